import type { Raster } from "../../framework/services/image-io.ts"
import { decodeImage } from "../images/decode-image.ts"
import { bytesSource } from "../images/image-header.ts"
import { checkPixelLimit } from "../images/pixel-limit.ts"
import { decodeNpy, npyValueType, readNpyHeader } from "./webdataset-npy.ts"

/*
 * Reading the members of a WebDataset sample from the bytes the tar reader holds: images through
 * the image decoders (PNG, JPEG, TIFF by their signature; the pixel limit from the header first),
 * NumPy arrays (the same limit on their shape), text, and JSON fields.
 */

/** A member that cannot be read, with the image decoders' problem kinds. */
export class MemberProblem extends Error {
  constructor(readonly kind: string, readonly reason: string) {
    super(reason)
  }
}

/**
 * An image member decoded: `.npy` by extension, the rest by signature; `complex` when the values were
 * |z|. Images of more than `maxPixels` pixels are refused before their values are decoded.
 */
export const decodeMember = async (name: string, bytes: Uint8Array, maxPixels: number): Promise<Raster & { readonly complex: boolean }> => {
  try {
    if (name.toLowerCase().endsWith(".npy")) {
      const complex = npyValueType(readNpyHeader(bytes).descr).complex
      const raster = decodeNpy(bytes, (width, height, bands) => checkPixelLimit({ width, height, bands }, bands, maxPixels, bytes.length))
      return { ...raster, complex }
    }
    return { ...(await decodeImage(bytesSource(bytes), { maxPixels })), complex: false }
  } catch (error) {
    const kind = (error as { kind?: string }).kind ?? "corrupt"
    throw new MemberProblem(kind, (error as Error).message)
  }
}

export const memberText = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

/** The string at a dotted path of a JSON text ("caption.MID"), or the problem. */
export const jsonField = (text: string, path: string): string | { readonly kind: string; readonly reason: string } => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return { kind: "corrupt", reason: `not valid JSON (${(error as Error).message})` }
  }
  const parts = path.split(".")
  for (const [i, part] of parts.entries()) {
    if (value === null || typeof value !== "object" || !(part in value)) {
      const at = parts.slice(0, i).join(".") || "the top level"
      const keys = value !== null && typeof value === "object" ? Object.keys(value).join(", ") : typeof value
      return { kind: "missing-caption", reason: `has no ${path} (${at} has ${keys || "no fields"})` }
    }
    value = (value as Record<string, unknown>)[part]
  }
  if (typeof value !== "string") return { kind: "missing-caption", reason: `${path} is ${JSON.stringify(value)}, not a string` }
  return value
}
