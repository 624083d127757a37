import { Effect, Either, Schema } from "effect"
import { crossFieldIssues, type DeclarationIssue } from "./cross-field-rules.ts"
import { ClipModel } from "./clip-model.ts"
import { Experiment, Study, type Declaration } from "./experiment.ts"
import { declarationIssues } from "./issues.ts"
import { shown } from "./rules.ts"
import { normaliseDeclaration } from "./normalise.ts"

export class DeclarationError extends Schema.TaggedError<DeclarationError>()("DeclarationError", {
  /** The file the declaration came from, when it came from one. */
  source: Schema.optional(Schema.String),
  issues: Schema.Array(Schema.Struct({ path: Schema.Array(Schema.Union(Schema.String, Schema.Number)), message: Schema.String }))
}) {
  /** One line per problem: `components.unet.rank: must be an integer ≥ 1 (got 0)`. */
  get lines(): ReadonlyArray<string> {
    return this.issues.map(formatIssue)
  }
  override get message() {
    const head = this.source === undefined ? "invalid declaration" : `${this.source}: invalid declaration`
    return `${head}\n  ${this.lines.join("\n  ")}`
  }
}

export const formatIssue = (issue: DeclarationIssue): string => issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`

const schemaFor = (input: unknown): Either.Either<Schema.Schema<Declaration, unknown>, DeclarationIssue> => {
  const kind = typeof input === "object" && input !== null ? (input as { kind?: unknown }).kind : undefined
  if (kind === "experiment") return Either.right(Experiment as Schema.Schema<Declaration, unknown>)
  if (kind === "study") return Either.right(Study as Schema.Schema<Declaration, unknown>)
  if (kind === "clip") return Either.right(ClipModel as Schema.Schema<Declaration, unknown>)
  return Either.left({
    path: ["kind"],
    message: `must be "experiment", "study" or "clip" (got ${shown(kind)}); build declarations with experiment(…), study(…) or clipModel(…)`
  })
}

/** `undefined` members mean "absent", as in JSON; TS declarations produce them with spreads. */
const withoutUndefined = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutUndefined)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)])
    )
  }
  return value
}

/**
 * Validates a declaration (every field, then the cross-field rules) and makes its defaults
 * explicit. Fails with every problem found, each with its JSON path.
 */
export const decodeDeclaration = (raw: unknown, source?: string): Effect.Effect<Declaration, DeclarationError> =>
  Effect.suspend(() => {
    const input = withoutUndefined(raw)
    const schema = schemaFor(input)
    if (Either.isLeft(schema)) return Effect.fail(new DeclarationError({ source, issues: [schema.left] }))
    const decoded = Schema.decodeUnknownEither(schema.right)(input, {
      errors: "all",
      onExcessProperty: "error"
    })
    if (Either.isLeft(decoded)) return Effect.fail(new DeclarationError({ source, issues: declarationIssues(decoded.left) }))
    const rules = crossFieldIssues(decoded.right)
    if (rules.length > 0) return Effect.fail(new DeclarationError({ source, issues: rules }))
    return Effect.succeed(normaliseDeclaration(decoded.right))
  })

/** The JSON form of a decoded declaration (what `sardine show` prints, canonicalised). */
export const encodeDeclaration = (declaration: Declaration): unknown => {
  switch (declaration.kind) {
    case "study":
      return Schema.encodeSync(Study)(declaration)
    case "experiment":
      return Schema.encodeSync(Experiment)(declaration)
    case "clip":
      return Schema.encodeSync(ClipModel)(declaration)
  }
}
