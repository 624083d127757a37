import { createHash } from "node:crypto"
import { codePointLength, MAX_KEY_LENGTH, MAX_PARAM_VALUE_LENGTH } from "./mlflow-limits.ts"

/** Plain JSON, as a declaration encodes to. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const shortHash = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 8)

/** Object keys may hold any character; a param key may not. "/" is replaced too: dots are the separators. */
const safeSegment = (segment: string): string => segment.length === 0 ? "_" : segment.replace(/[^A-Za-z0-9_.\- ]/g, "_")

const scalarText = (value: null | boolean | number | string): string => value === null ? "null" : typeof value === "string" ? value : String(value)

const isScalar = (value: Json): value is null | boolean | number | string => value === null || typeof value !== "object"

/** Arrays of objects that all carry a distinct, simple `name` are keyed by it (`components.unet.rank`). */
const namedElements = (items: ReadonlyArray<Json>): ReadonlyArray<string> | undefined => {
  const names = items.map((item) =>
    item !== null && typeof item === "object" && !Array.isArray(item) && typeof (item as Record<string, Json>).name === "string"
      ? (item as Record<string, Json>).name as string
      : undefined
  )
  if (names.some((n) => n === undefined || !/^[A-Za-z0-9_-]+$/.test(n))) return undefined
  return new Set(names).size === names.length ? names as ReadonlyArray<string> : undefined
}

/** Keeps a value within MLflow's limit; the hash of the whole value keeps two long values apart. */
const fitValue = (value: string): string => {
  if (codePointLength(value) <= MAX_PARAM_VALUE_LENGTH) return value
  const suffix = `…[${codePointLength(value)} chars, sha256 ${shortHash(value)}]`
  return Array.from(value).slice(0, MAX_PARAM_VALUE_LENGTH - suffix.length).join("") + suffix
}

const fitKey = (key: string): string => key.length <= MAX_KEY_LENGTH ? key : `${key.slice(0, MAX_KEY_LENGTH - 9)}-${shortHash(key)}`

/**
 * Flattens a declaration into MLflow params: nested objects become dot paths; arrays of scalars become one
 * param holding their JSON; arrays of objects are indexed by their `name` when every element has a distinct
 * one, else by position; empty objects and arrays become "{}" and "[]"; null becomes "null".
 * Keys are limited to MLflow's characters (others become "_") and 250 characters (longer ones end with a
 * hash of the full path); values longer than 6000 characters are cut and end with their length and hash.
 */
export const flattenParams = (declaration: Json, prefix = ""): Record<string, string> => {
  const out: Record<string, string> = {}
  const put = (path: ReadonlyArray<string>, value: string) => {
    const raw = path.join(".")
    let key = fitKey(raw.length === 0 ? "value" : raw)
    // Two different paths may sanitise to the same key ("a/b" and "a_b"): the second gets a hash suffix.
    if (key in out) key = fitKey(`${raw.slice(0, MAX_KEY_LENGTH - 9)}-${shortHash(raw + "\u0000" + value)}`)
    out[key] = fitValue(value)
  }
  const walk = (path: ReadonlyArray<string>, value: Json) => {
    if (isScalar(value)) return put(path, scalarText(value))
    if (Array.isArray(value)) {
      const items = value as ReadonlyArray<Json>
      if (items.every(isScalar)) return put(path, JSON.stringify(items))
      const names = namedElements(items)
      items.forEach((item, i) => walk([...path, names?.[i] ?? String(i)], item))
      return
    }
    const entries = Object.entries(value as { readonly [key: string]: Json })
    if (entries.length === 0) return put(path, "{}")
    for (const [k, v] of entries) walk([...path, safeSegment(k)], v)
  }
  walk(prefix.length === 0 ? [] : [prefix], declaration)
  return out
}
