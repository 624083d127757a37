import { DecodeFailure } from "./decode-failure.ts"
import type { ImageHeader } from "./image-header.ts"

/*
 * The one size check every decoder goes through, on the header's numbers, before any pixel is
 * decoded. A raster costs 4 bytes (float32) per value, so the limit bounds memory, not file size.
 * Bands count too, beyond the four an RGBA image has: a TIFF may declare thousands.
 */

const fileSize = (bytes: number) =>
  bytes < 1e3
    ? `${bytes} B`
    : bytes < 1e6
    ? `${(bytes / 1e3).toFixed(0)} KB`
    : bytes < 1e9
    ? `${(bytes / 1e6).toFixed(1)} MB`
    : `${(bytes / 1e9).toFixed(1)} GB`

const side = (limit: number) => {
  const root = Math.sqrt(limit)
  return Number.isInteger(root) ? ` (${root} × ${root})` : ""
}

/**
 * Refuses an image of more than `maxPixels` pixels (or tiles of more), or of more than
 * 4 × `maxPixels` values over the `bandsRead` bands that will be decoded, naming its size and
 * the file's.
 */
export const checkPixelLimit = (header: ImageHeader, bandsRead: number, maxPixels: number, fileBytes: number): void => {
  const tile = header.tile ?? { width: 0, height: 0 }
  const pixels = Math.max(header.width * header.height, tile.width * tile.height)
  const values = pixels * bandsRead
  if (pixels <= maxPixels && values <= 4 * maxPixels) return
  const tiles = tile.width * tile.height > header.width * header.height ? ` in tiles of ${tile.width} × ${tile.height}` : ""
  const size = `${header.width} × ${header.height} pixels${tiles}${bandsRead > 4 ? ` × ${bandsRead} bands` : ""}`
  const over = pixels > maxPixels
    ? `the pixel limit of ${maxPixels}${side(maxPixels)}`
    : `the limit of ${4 * maxPixels} values (four bands at the pixel limit of ${maxPixels})`
  throw new DecodeFailure(
    "too-large",
    `too large: ${size} in a file of ${fileSize(fileBytes)} is over ${over}; decoding it would take about ${fileSize(4 * values)} (raise maxPixels to read it)`
  )
}
