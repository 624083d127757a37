import { Either, Schema } from "effect"

/*
 * What a run logs, as the tracking spool keeps it: one JSON line per item. Runs are named by a reference
 * (`run`: the run's reuse key) rather than by an MLflow run id, because an item may be written before the
 * server has ever answered; the queue resolves it when it sends the run's `open` item. Files an item
 * sends (`file`, `path`) are relative to the spool session's folder, which holds a link or copy.
 */

/** protobuf JSON's spelling of the non-finite doubles, which JSON itself cannot hold (it would write null). */
const MetricValue = Schema.Union(
  // First, so that encoding tries it before plain numbers (NaN is a number too).
  Schema.transform(Schema.Literal("NaN", "Infinity", "-Infinity"), Schema.Number.pipe(Schema.filter((n) => !Number.isFinite(n))), {
    strict: true,
    decode: (s) => (s === "NaN" ? NaN : s === "Infinity" ? Infinity : -Infinity),
    encode: (n) => (Number.isNaN(n) ? "NaN" as const : n > 0 ? "Infinity" as const : "-Infinity" as const)
  }),
  Schema.Number
)

const Strings = Schema.Record({ key: Schema.String, value: Schema.String })

export const SpoolItem = Schema.Union(
  Schema.Struct({
    op: Schema.Literal("open"),
    run: Schema.String,
    experiment: Schema.String,
    name: Schema.String,
    reuseKey: Schema.String,
    /** A forced rerun's run: a new one rather than the run with reuseKey (StartRunOptions.rerun). */
    rerun: Schema.optional(Schema.Boolean),
    parent: Schema.optional(Schema.String),
    tags: Strings,
    params: Strings
  }),
  Schema.Struct({
    op: Schema.Literal("metrics"),
    run: Schema.String,
    points: Schema.Array(Schema.Struct({ key: Schema.String, value: MetricValue, step: Schema.Number, timestamp: Schema.Number }))
  }),
  Schema.Struct({
    op: Schema.Literal("image"),
    run: Schema.String,
    key: Schema.String,
    step: Schema.Number,
    timestamp: Schema.Number,
    id: Schema.String,
    file: Schema.String
  }),
  Schema.Struct({ op: Schema.Literal("artifact"), run: Schema.String, path: Schema.String, artifactPath: Schema.String }),
  Schema.Struct({
    op: Schema.Literal("inputs"),
    run: Schema.String,
    inputs: Schema.Array(Schema.Struct({
      name: Schema.String,
      digest: Schema.String,
      source: Schema.String,
      context: Schema.optionalWith(Schema.String, { exact: true })
    }))
  }),
  Schema.Struct({ op: Schema.Literal("end"), run: Schema.String, status: Schema.Literal("FINISHED", "FAILED", "KILLED"), endTime: Schema.Number })
)
export type SpoolItem = typeof SpoolItem.Type

const encodeItem = Schema.encodeSync(Schema.parseJson(SpoolItem))
const decodeItem = Schema.decodeUnknownEither(Schema.parseJson(SpoolItem))

/** One line of the journal, without its newline. */
export const spoolLine = (item: SpoolItem): string => encodeItem(item)

/** The item on a journal line, or why it is not one. */
export const parseSpoolLine = (line: string): Either.Either<SpoolItem, string> =>
  Either.mapLeft(decodeItem(line), (error) => error.message.split("\n")[0] ?? error.message)

/** The session-relative file an item sends, if any. */
export const attachedFile = (item: SpoolItem): string | undefined => item.op === "image" ? item.file : item.op === "artifact" ? item.path : undefined
