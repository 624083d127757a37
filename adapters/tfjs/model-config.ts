import { Effect, ParseResult, Schema } from "effect"
import { withNodeFileSystem } from "./node-file-system.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"

/** A model config.json sardine cannot build: names the file, the field and the rule. */
export class ModelConfigError extends Schema.TaggedError<ModelConfigError>()("ModelConfigError", {
  file: Schema.String,
  reason: Schema.String,
  /** The failure of the file operation or the parser, when one failed. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

const describe = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "config"}: ${issue.message}`)
    .join("; ")

/**
 * Decodes a parsed config with `schema`, which names every key the pinned diffusers / transformers class takes
 * (test/models/config-keys.test.ts), each implemented or refused. Other keys are not decoded here because the
 * plan of either engine has refused them already, naming file, key and engine (config-refusals.ts,
 * unknown-config-keys.ts), and a CLIP folder's reader refuses them itself (clip-model.ts).
 */
export const decodeConfig = <A, I>(schema: Schema.Schema<A, I>, json: unknown, file: string): Effect.Effect<A, ModelConfigError> =>
  Schema.decodeUnknown(schema)(json).pipe(Effect.mapError((error) => new ModelConfigError({ file, reason: describe(error) })))

/** Python's json writes float("inf") and nan as these bare words (diffusers' DPM-Solver config has `-Infinity`). */
const pythonNonFinite: Record<string, number> = { NaN, Infinity, "-Infinity": -Infinity }
const nonFiniteMarker = "\u0000python-float:"

/** JSON.parse that also reads the NaN / Infinity / -Infinity Python's json module writes. */
export const parsePythonJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (error) {
    // Quote the bare words outside strings, then turn them back into numbers.
    const quoted = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) => (m.startsWith("\"") ? m : JSON.stringify(nonFiniteMarker + m)))
    if (quoted === text) throw error
    return JSON.parse(quoted, (_, v) => (typeof v === "string" && v.startsWith(nonFiniteMarker) ? pythonNonFinite[v.slice(nonFiniteMarker.length)] : v))
  }
}

export const readJsonFile = (file: string): Effect.Effect<unknown, ModelConfigError> =>
  withNodeFileSystem((fs) => fs.readFileString(file)).pipe(
    Effect.mapError((error) => new ModelConfigError({ file, reason: `not readable (${fileProblem(error)})`, cause: error })),
    Effect.flatMap((text) =>
      Effect.try({
        try: () => parsePythonJson(text),
        catch: (error) => new ModelConfigError({ file, reason: `not readable JSON (${(error as Error).message})`, cause: error })
      })
    )
  )

/** A check diffusers makes while building the model, reported on the config file. */
export const requireThat = (condition: boolean, file: string, reason: string): Effect.Effect<void, ModelConfigError> =>
  condition ? Effect.void : Effect.fail(new ModelConfigError({ file, reason }))

/** A field sardine does not implement must keep its supported value(s); the error says which. */
export const only = <A, I>(schema: Schema.Schema<A, I>, rule: string): Schema.Schema<A, I> =>
  schema.annotations({ message: () => ({ message: `sardine supports only ${rule}`, override: true }) })

/** A config flag sardine cannot honour when true; `why` says so in the error. */
export const onlyFalse = (why: string) => Schema.optionalWith(only(Schema.Literal(false), `false (${why})`), { default: () => false as const })

export const PositiveInt = Schema.Int.pipe(Schema.positive())
export const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
