import { Schema } from "effect"

/**
 * The pattern language of `full({ only })` and `lora({ targets })`, over torch state-dict names
 * (`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight`). A module's name is the name
 * of its parameters without their last segment.
 *
 * A pattern is one or more dot-separated segments of letters, digits, `_` and `*`; in a segment, `*`
 * stands for any run of characters (never a dot). A pattern matches a dotted name when its segments
 * match the name's last segments one for one — PEFT's `target_modules` rule (`to_q`, `to_out.0`),
 * plus the glob:
 *   lora targets  adapt every Linear / Conv2d module whose name the pattern matches;
 *   full only     trains every parameter whose name, or the name of a module holding it, the pattern
 *                 matches: `attn1`, `down_blocks.0`, `mid_block`, `down_blocks.*.attentions`, `bias`,
 *                 `norm*.weight`; `*` alone matches every parameter.
 * The torch engine implements the same rule (its worker receives the patterns as declared).
 */

export const ModulePattern = Schema.String.pipe(
  Schema.filter((s) => /^[A-Za-z0-9_*]+(\.[A-Za-z0-9_*]+)*$/.test(s), {
    message: (issue) =>
      `must be a dotted module name of letters, digits, '_' and '*', such as "attn1", "to_out.0" or "down_blocks.*.attentions" (got ${
        JSON.stringify(issue.actual)
      })`
  })
)

const escaped = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, "\\$&")

/** Whether `pattern` matches the dotted `name` (its segments against the name's last segments). */
export const patternMatcher = (pattern: string): (name: string) => boolean => {
  const segments = pattern.split(".").map((s) => new RegExp(`^${s.split("*").map(escaped).join(".*")}$`))
  return (name) => {
    const parts = name.split(".")
    const offset = parts.length - segments.length
    return offset >= 0 && segments.every((segment, i) => segment.test(parts[offset + i]!))
  }
}

/** `name` and the names of the modules holding it: `a.b.weight` → `a`, `a.b`, `a.b.weight`. */
export const enclosingNames = (name: string): Array<string> => {
  const parts = name.split(".")
  return parts.map((_, i) => parts.slice(0, i + 1).join("."))
}

/** The parameters of `names` that `only` selects: matched themselves or inside a matched module. */
export const selectedParameters = (names: ReadonlyArray<string>, only: ReadonlyArray<string>): Set<string> => {
  const matchers = only.map(patternMatcher)
  return new Set(names.filter((name) => enclosingNames(name).some((n) => matchers.some((m) => m(n)))))
}

/** PEFT's `target_modules` as a regular expression (PEFT full-matches it against module names): for targets with `*`. */
export const patternsAsRegex = (patterns: ReadonlyArray<string>): string =>
  `(.*\\.)?(${patterns.map((p) => p.split(".").map((s) => s.split("*").map(escaped).join("[^.]*")).join("\\.")).join("|")})`

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    }
    previous = current
  }
  return previous[b.length]!
}

/** The runs of `length` consecutive segments of `names`, anywhere (what an `only` pattern can match). */
export const segmentRuns = (names: ReadonlyArray<string>, length: number): Set<string> => {
  const runs = new Set<string>()
  for (const name of names) {
    const parts = name.split(".")
    for (let i = 0; i + length <= parts.length; i++) runs.add(parts.slice(i, i + length).join("."))
  }
  return runs
}

/** The last `length` segments of `names` (what a LoRA target can match). */
export const segmentSuffixes = (names: ReadonlyArray<string>, length: number): Set<string> =>
  new Set(names.map((name) => name.split(".").slice(-length).join(".")))

/** The candidate a mistyped pattern may have meant: the closest by edit distance, if within a third of its length. */
export const nearestPattern = (pattern: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Math.max(1, Math.floor(pattern.length / 3)) + 1
  for (const candidate of [...candidates].sort()) {
    const distance = editDistance(pattern, candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}
