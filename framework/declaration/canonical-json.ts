import { createHash } from "node:crypto"

/**
 * JSON with object keys sorted at every level and `undefined` members dropped, so equal data
 * always gives equal bytes. Arrays keep their order: order is meaning there (prompts, seeds).
 */
const sortKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === "object") {
    const sorted: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key]
      if (member !== undefined) sorted[key] = sortKeys(member)
    }
    return sorted
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new TypeError(`canonical JSON cannot hold ${value}`)
  }
  return value
}

export const canonicalJson = (value: unknown): string => JSON.stringify(sortKeys(value))

/** The same, indented for people; `sardine show` prints this. */
export const canonicalJsonPretty = (value: unknown): string => `${JSON.stringify(sortKeys(value), null, 2)}\n`

/** Hex SHA-256 of the canonical JSON. */
export const contentHash = (value: unknown): string => createHash("sha256").update(canonicalJson(value)).digest("hex")
