import type { Raster } from "../../framework/services/image-io.ts"
import { DecodeFailure } from "../images/decode-failure.ts"
import { describeUnsupported, hasEndMarker, sniffFormat } from "../images/file-signature.ts"
import { readWithSharp } from "../images/sharp-codec.ts"
import { readTiff } from "../images/tiff-reader.ts"
import { decodeNpy, npyValueType, readNpyHeader } from "./webdataset-npy.ts"

/*
 * Reading the members of a WebDataset sample from the bytes the tar reader holds: images (PNG,
 * JPEG, TIFF by their signature, as ImageIO reads files), NumPy arrays, text, and JSON fields.
 */

/** A member that cannot be read, with the image decoders' problem kinds. */
export class MemberProblem extends Error {
  constructor(readonly kind: string, readonly reason: string) {
    super(reason)
  }
}

/** An image member decoded: `.npy` by extension, the rest by signature; `complex` when the values were |z|. */
export const decodeMember = async (name: string, bytes: Uint8Array): Promise<Raster & { readonly complex: boolean }> => {
  try {
    if (name.toLowerCase().endsWith(".npy")) {
      const complex = npyValueType(readNpyHeader(bytes).descr).complex
      return { ...decodeNpy(bytes), complex }
    }
    if (bytes.length === 0) throw new DecodeFailure("empty", "empty member (0 bytes)")
    const format = sniffFormat(bytes)
    if (format === undefined) throw new DecodeFailure("unsupported", `unsupported format: ${describeUnsupported(bytes)}; sardine reads PNG, JPEG, TIFF and .npy`)
    if (format === "tiff") return { ...(await readTiff(bytes, undefined)), complex: false }
    if (!hasEndMarker(format, bytes)) {
      throw new DecodeFailure("truncated", `truncated: the ${format.toUpperCase()} member has no ${format === "png" ? "IEND chunk" : "end-of-image marker"} (${bytes.length} bytes)`)
    }
    return { ...(await readWithSharp(format, bytes)), complex: false }
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
