import { fromArrayBuffer, getDecoder, type GeoTIFFImage } from "geotiff"
import type { Raster, RasterInfo } from "../../framework/services/image-io.ts"
import { DecodeFailure } from "./decode-failure.ts"

/*
 * TIFF / GeoTIFF through geotiff.js. geotiff.js decodes integer and float samples but not complex
 * ones (SLC products), so complex strips are decoded here with geotiff's own decompressors and
 * reduced to their magnitude.
 */

type SampleKind = { readonly name: string; readonly complex: boolean }

const sampleFormatNames: Record<number, string> = {
  1: "unsigned integer",
  2: "signed integer",
  3: "floating point",
  4: "undefined",
  5: "complex integer",
  6: "complex floating point"
}

const sampleKind = (format: number, bits: number): SampleKind | undefined => {
  const table: Record<number, Record<number, string>> = {
    1: { 8: "uint8", 16: "uint16", 32: "uint32" },
    2: { 8: "int8", 16: "int16", 32: "int32" },
    3: { 16: "float16", 32: "float32", 64: "float64" },
    5: { 32: "cint16", 64: "cint32" },
    6: { 64: "complex64", 128: "complex128" }
  }
  const name = table[format]?.[bits]
  return name === undefined ? undefined : { name, complex: format === 5 || format === 6 }
}

const toArrayBuffer = (bytes: Uint8Array): ArrayBuffer =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
    ? bytes.buffer
    : new Uint8Array(bytes).buffer

interface OpenedTiff {
  readonly image: GeoTIFFImage
  readonly width: number
  readonly height: number
  readonly bands: number
  readonly kind: SampleKind
  readonly compression: number
  readonly noData?: number
}

/** After decode-image.ts read the header (it lies inside the file) and checked the pixel limit. */
const open = async (bytes: Uint8Array): Promise<OpenedTiff> => {
  let image: GeoTIFFImage
  try {
    const tiff = await fromArrayBuffer(toArrayBuffer(bytes))
    image = await tiff.getImage(0)
  } catch (error) {
    throw new DecodeFailure("corrupt", `corrupt TIFF: ${(error as Error).message}`)
  }
  const directory = image.getFileDirectory()
  const width = image.getWidth()
  const height = image.getHeight()
  if (!(width > 0 && height > 0)) {
    throw new DecodeFailure("corrupt", `corrupt TIFF: image size ${width} × ${height}`)
  }
  const bands = image.getSamplesPerPixel()
  const formats: ArrayLike<number> = (await directory.loadValue("SampleFormat")) ?? [1]
  const bits: ArrayLike<number> = (await directory.loadValue("BitsPerSample")) ?? [1]
  const format = formats[0]
  const bits0 = bits[0]
  if (format === undefined || bits0 === undefined) throw new DecodeFailure("corrupt", "corrupt TIFF: an empty SampleFormat or BitsPerSample")
  for (let s = 1; s < bands; s++) {
    if ((formats[s] ?? format) !== format || (bits[s] ?? bits0) !== bits0) {
      throw new DecodeFailure("unsupported", "unsupported TIFF: bands of different sample types")
    }
  }
  const kind = sampleKind(format, bits0)
  if (kind === undefined) {
    throw new DecodeFailure(
      "unsupported",
      `unsupported TIFF sample type: ${bits0}-bit ${sampleFormatNames[format] ?? `format ${format}`}`
    )
  }
  const compression: number = (await directory.loadValue("Compression")) ?? 1
  const noDataText: string | undefined = directory.hasTag("GDAL_NODATA")
    ? await directory.loadValue("GDAL_NODATA")
    : undefined
  const noData = parseNoData(noDataText)
  return { image, width, height, bands, kind, compression, ...(noData !== undefined ? { noData } : {}) }
}

/** GDAL writes the no-data value as ASCII ("-99", "nan", "-3.4e+38"). */
const parseNoData = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined
  const trimmed = text.replace(/\0/g, "").trim()
  if (/^[-+]?nan$/i.test(trimmed)) return Number.NaN
  const value = Number(trimmed)
  return trimmed.length > 0 && !Number.isNaN(value) ? value : undefined
}

/** Offsets and byte counts of the strips or tiles, each checked against the file's length. */
const blocks = async (opened: OpenedTiff, fileLength: number) => {
  const directory = opened.image.getFileDirectory()
  const tiled = !directory.hasTag("StripOffsets")
  const offsets: ArrayLike<number> | undefined = await directory.loadValue(tiled ? "TileOffsets" : "StripOffsets")
  const counts: ArrayLike<number> | undefined = await directory.loadValue(tiled ? "TileByteCounts" : "StripByteCounts")
  if (offsets === undefined || counts === undefined || offsets.length !== counts.length) {
    throw new DecodeFailure("corrupt", "corrupt TIFF: missing or inconsistent strip/tile offsets")
  }
  let end = 0
  for (let i = 0; i < offsets.length; i++) end = Math.max(end, Number(offsets[i]) + Number(counts[i]))
  if (end > fileLength) {
    throw new DecodeFailure(
      "truncated",
      `truncated: pixel data runs to byte ${end} but the file has only ${fileLength} bytes`
    )
  }
  return { tiled, offsets, counts }
}

const checkCompression = async (opened: OpenedTiff) => {
  try {
    return await getDecoder(opened.compression, await decoderParameters(opened))
  } catch {
    throw new DecodeFailure("unsupported", `unsupported TIFF compression (code ${opened.compression})`)
  }
}

const decoderParameters = async (opened: OpenedTiff) => {
  const directory = opened.image.getFileDirectory()
  return {
    tileWidth: opened.image.getTileWidth(),
    tileHeight: opened.image.getTileHeight(),
    planarConfiguration: ((await directory.loadValue("PlanarConfiguration")) ?? 1) as 1 | 2,
    bitsPerSample: Array.from((await directory.loadValue("BitsPerSample")) ?? [1]),
    predictor: (await directory.loadValue("Predictor")) ?? 1
  }
}

export const tiffInfo = async (bytes: Uint8Array): Promise<RasterInfo> => {
  const opened = await open(bytes)
  await blocks(opened, bytes.length)
  return {
    format: "tiff",
    width: opened.width,
    height: opened.height,
    bands: opened.bands,
    sampleType: opened.kind.name,
    ...(opened.noData !== undefined ? { noData: opened.noData } : {})
  }
}

export const checkBand = (band: number | undefined, bands: number) => {
  if (band !== undefined && (!Number.isInteger(band) || band < 0 || band >= bands)) {
    throw new DecodeFailure(
      "band-out-of-range",
      `band ${band} requested but the file has ${bands} band${bands === 1 ? "" : "s"} (numbered from 0)`
    )
  }
}

export const readTiff = async (bytes: Uint8Array, band?: number): Promise<Raster> => {
  const opened = await open(bytes)
  const layout = await blocks(opened, bytes.length)
  checkBand(band, opened.bands)
  await checkCompression(opened)
  try {
    const noData = opened.noData !== undefined ? { noData: opened.noData } : {}
    if (opened.kind.complex) return { ...(await readComplexMagnitude(opened, layout, bytes, band)), ...noData }
    const samples = band === undefined ? undefined : [band]
    const values = await opened.image.readRasters({ interleave: true, ...(samples ? { samples } : {}) })
    return {
      width: opened.width,
      height: opened.height,
      channels: band === undefined ? opened.bands : 1,
      data: values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>),
      ...noData
    }
  } catch (error) {
    if (error instanceof DecodeFailure) throw error
    throw new DecodeFailure("corrupt", `corrupt TIFF pixel data: ${(error as Error).message}`)
  }
}

/** |re + i·im| of each complex sample, strip by strip (or tile by tile). */
const readComplexMagnitude = async (
  opened: OpenedTiff,
  layout: Awaited<ReturnType<typeof blocks>>,
  bytes: Uint8Array,
  band: number | undefined
): Promise<Raster> => {
  const parameters = await decoderParameters(opened)
  if (parameters.predictor !== 1) {
    throw new DecodeFailure("unsupported", `unsupported TIFF: predictor ${parameters.predictor} on complex samples`)
  }
  const decoder = await getDecoder(opened.compression, parameters)
  const { width, height, bands, image } = opened
  const channels = band === undefined ? bands : 1
  const firstBand = band ?? 0
  const out = new Float32Array(width * height * channels)
  const partBytes = opened.kind.name === "cint16" ? 2 : opened.kind.name === "cint32" || opened.kind.name === "complex64" ? 4 : 8
  const read = (view: DataView, at: number): number => {
    switch (opened.kind.name) {
      case "cint16":
        return view.getInt16(at, image.littleEndian)
      case "cint32":
        return view.getInt32(at, image.littleEndian)
      case "complex64":
        return view.getFloat32(at, image.littleEndian)
      default:
        return view.getFloat64(at, image.littleEndian)
    }
  }
  const planar = parameters.planarConfiguration === 2
  const blockWidth = image.getTileWidth()
  const blockHeight = image.getTileHeight()
  const across = Math.ceil(width / blockWidth)
  const down = Math.ceil(height / blockHeight)
  const pixelStride = planar ? 2 * partBytes : 2 * partBytes * bands
  for (let b = 0; b < channels; b++) {
    const sample = firstBand + b
    for (let by = 0; by < down; by++) {
      for (let bx = 0; bx < across; bx++) {
        const index = (planar ? sample * across * down : 0) + by * across + bx
        const start = Number(layout.offsets[index])
        // A copy: a Node Buffer's .buffer may be a shared pool larger than the slice.
        const chunk = new Uint8Array(bytes.subarray(start, start + Number(layout.counts[index])))
        const decoded = new DataView(await decoder.decode(chunk.buffer))
        const sampleOffset = planar ? 0 : sample * 2 * partBytes
        const rows = Math.min(blockHeight, height - by * blockHeight)
        const cols = Math.min(blockWidth, width - bx * blockWidth)
        for (let y = 0; y < rows; y++) {
          for (let x = 0; x < cols; x++) {
            const at = (y * blockWidth + x) * pixelStride + sampleOffset
            if (at + 2 * partBytes > decoded.byteLength) {
              throw new DecodeFailure("corrupt", `corrupt TIFF pixel data: block ${index} decodes to too few bytes`)
            }
            const re = read(decoded, at)
            const im = read(decoded, at + partBytes)
            out[((by * blockHeight + y) * width + bx * blockWidth + x) * channels + b] = Math.hypot(re, im)
          }
        }
      }
    }
  }
  return { width, height, channels, data: out }
}
