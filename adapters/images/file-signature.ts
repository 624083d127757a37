/** Image container formats sardine reads, recognised by their first bytes (never by the file name). */
export type ContainerFormat = "png" | "jpeg" | "tiff"

const startsWith = (bytes: Uint8Array, signature: ReadonlyArray<number>) => bytes.length >= signature.length && signature.every((b, i) => bytes[i] === b)

export const sniffFormat = (bytes: Uint8Array): ContainerFormat | undefined => {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png"
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg"
  // Classic TIFF ("II*\0" / "MM\0*") and BigTIFF ("II+\0" / "MM\0+").
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return "tiff"
  if (startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])) return "tiff"
  return undefined
}

/** Names formats people commonly mistake for supported ones, so the error says what the file is. */
export const describeUnsupported = (bytes: Uint8Array): string => {
  const ascii = String.fromCharCode(...bytes.subarray(0, 12))
  if (ascii.startsWith("GIF8")) return "GIF"
  if (ascii.startsWith("RIFF") && ascii.slice(8, 12) === "WEBP") return "WebP"
  if (ascii.startsWith("BM")) return "BMP"
  if (ascii.slice(4, 8) === "ftyp") return "HEIF/AVIF"
  if (startsWith(bytes, [0x89, 0x48, 0x44, 0x46])) return "HDF5"
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ")
  return `unknown (first bytes ${hex})`
}

const PNG_IEND = [0x49, 0x45, 0x4e, 0x44]

/**
 * Whether a PNG/JPEG ends with its end marker, given the file's last bytes (up to 64) and its
 * length. Decoders may accept a cut file with a warning and return grey rows; a missing IEND
 * chunk / EOI marker is the reliable sign of truncation.
 */
export const hasEndMarker = (format: "png" | "jpeg", tail: Uint8Array, fileLength: number): boolean => {
  const start = fileLength - tail.length
  if (format === "png") {
    // The IEND chunk: length 0, type "IEND", CRC — the last 12 bytes of a complete file, after the signature.
    const at = tail.length - 8
    return at >= 0 && start + at >= 8 && PNG_IEND.every((b, i) => tail[at + i] === b)
  }
  // JPEG: EOI (FF D9) after the SOI marker, allowing trailing padding some writers append.
  for (let i = tail.length - 2; i >= 0 && start + i >= 2; i--) {
    if (tail[i] === 0xff && tail[i + 1] === 0xd9) return true
  }
  return false
}
