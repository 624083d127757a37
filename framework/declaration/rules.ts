import { Schema } from "effect"

/**
 * Field schemas whose failure messages read as rules: `must be an integer ≥ 1 (got 0)`.
 * Validation errors print as `<json path>: <rule>`, so a message never repeats the path.
 */

/** A value as the user wrote it: JSON, except that NaN and ±Infinity print as themselves (JSON has null). */
export const shown = (value: unknown, seen: ReadonlySet<object> = new Set()): string => {
  if (value === undefined) return "nothing"
  if (typeof value === "number" || typeof value === "bigint") return String(value)
  if (typeof value !== "object" || value === null) return JSON.stringify(value) ?? String(value)
  if (seen.has(value)) return "(cycle)"
  const inner = new Set([...seen, value])
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : shown(v, inner))).join(",")}]`
  const fields = Object.entries(value).filter(([, v]) => v !== undefined)
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${shown(v, inner)}`).join(",")}}`
}

const typed = <S extends Schema.Schema.Any>(schema: S, what: string): S =>
  schema.annotations({ message: (issue) => `must be ${what} (got ${shown(issue.actual)})` }) as S

/** A number that must satisfy `predicate`, described by `rule` in the error. */
export const numberWhere = (rule: string, predicate: (n: number) => boolean) =>
  typed(Schema.Number, "a number").pipe(
    Schema.filter(predicate, { message: (issue) => `must be ${rule} (got ${shown(issue.actual)})` })
  )

export const IntegerAtLeast = (min: number) => numberWhere(`an integer ≥ ${min}`, (n) => Number.isInteger(n) && n >= min)

export const PositiveNumber = numberWhere("a number > 0", (n) => Number.isFinite(n) && n > 0)

export const NonNegativeNumber = numberWhere("a number ≥ 0", (n) => Number.isFinite(n) && n >= 0)

export const Fraction = numberWhere("a number in [0, 1)", (n) => n >= 0 && n < 1)

export const ClosedFraction = numberWhere("a number in [0, 1]", (n) => n >= 0 && n <= 1)

export const Seed = numberWhere("an integer in [0, 2^32)", (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32)

export const NonEmptyString = typed(Schema.String, "a string").pipe(
  Schema.filter((s) => s.trim().length > 0, { message: () => "must not be empty" })
)

/** Names become folder names, MLflow run names and report headings. */
export const Name = typed(Schema.String, "a string").pipe(
  Schema.filter((s) => /^[a-z0-9][a-z0-9._-]{0,63}$/.test(s), {
    message: (issue) => `must be 1–64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit (got ${shown(issue.actual)})`
  })
)

export const Bool = typed(Schema.Boolean, "true or false")

/** A literal union whose error lists the choices. */
export const OneOf = <const L extends ReadonlyArray<string>>(...choices: L) =>
  Schema.Literal(...choices).annotations({
    // override: a literal union would otherwise report one "Expected …" line per choice.
    message: (issue) => ({
      message: `must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")} (got ${shown(issue.actual)})`,
      override: true
    })
  })
