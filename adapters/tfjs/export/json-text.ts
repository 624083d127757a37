/**
 * Edits of a JSON object's text that leave everything else byte for byte: transformers' typed configs
 * refuse `1` where the file said `1.0` (`initializer_factor expected float`), and JSON.parse +
 * JSON.stringify turns one into the other. Only the members named are rewritten or extended.
 */

const skipWhitespace = (text: string, at: number): number => {
  while (at < text.length && /\s/.test(text[at]!)) at++
  return at
}

/** The index just past the JSON value starting at `at` (strings, numbers, literals, nested containers). */
const valueEnd = (text: string, at: number): number => {
  const first = text[at]
  if (first === "\"") {
    let i = at + 1
    while (text[i] !== "\"") i += text[i] === "\\" ? 2 : 1
    return i + 1
  }
  if (first === "{" || first === "[") {
    let depth = 0
    for (let i = at; i < text.length; i++) {
      const c = text[i]
      if (c === "\"") i = valueEnd(text, i) - 1
      else if (c === "{" || c === "[") depth++
      else if (c === "}" || c === "]") {
        depth--
        if (depth === 0) return i + 1
      }
    }
    throw new Error("unterminated JSON container")
  }
  let i = at
  while (i < text.length && !/[\s,}\]]/.test(text[i]!)) i++
  return i
}

/** Where each top-level member's value is in the text of a JSON object. */
const memberSpans = (text: string): Map<string, { readonly start: number; readonly end: number }> => {
  const spans = new Map<string, { start: number; end: number }>()
  let at = skipWhitespace(text, 0)
  if (text[at] !== "{") throw new Error("not a JSON object")
  at = skipWhitespace(text, at + 1)
  while (text[at] !== "}") {
    const keyEnd = valueEnd(text, at)
    const key = JSON.parse(text.slice(at, keyEnd)) as string
    at = skipWhitespace(text, keyEnd)
    if (text[at] !== ":") throw new Error(`expected ':' after ${JSON.stringify(key)}`)
    const start = skipWhitespace(text, at + 1)
    const end = valueEnd(text, start)
    spans.set(key, { start, end })
    at = skipWhitespace(text, end)
    if (text[at] === ",") at = skipWhitespace(text, at + 1)
  }
  return spans
}

/** `text` with the top-level member `key` set to `value` (replaced in place, or added before the closing brace). */
export const withMember = (text: string, key: string, value: unknown): string => {
  const span = memberSpans(text).get(key)
  if (span !== undefined) return text.slice(0, span.start) + JSON.stringify(value) + text.slice(span.end)
  const close = text.lastIndexOf("}")
  const body = text.slice(0, close).trimEnd()
  const separator = body.endsWith("{") ? "" : ","
  return `${body}${separator}\n  ${JSON.stringify(key)}: ${JSON.stringify(value)}\n${text.slice(close)}`
}

/**
 * `text` with `entries` added to the top-level member `key`, an object (`[name, value]` pairs) or an
 * array (values); the member's existing entries stay as written. A missing member is created.
 */
export const withEntriesAdded = (text: string, key: string, entries: ReadonlyArray<unknown>, kind: "object" | "array"): string => {
  const span = memberSpans(text).get(key)
  const items = entries.map((
    e
  ) => (kind === "object" ? `${JSON.stringify((e as [string, unknown])[0])}: ${JSON.stringify((e as [string, unknown])[1])}` : JSON.stringify(e)))
  if (span === undefined) return withMember(text, key, kind === "object" ? Object.fromEntries(entries as Array<[string, unknown]>) : entries)
  const member = text.slice(span.start, span.end)
  const inner = member.slice(1, -1)
  const joined = items.join(", ")
  const updated = `${member[0]}${inner.trim().length === 0 ? joined : `${inner.trimEnd()}, ${joined}`}${member.at(-1)}`
  return text.slice(0, span.start) + updated + text.slice(span.end)
}
