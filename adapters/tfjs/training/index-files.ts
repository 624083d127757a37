import { Effect, ParseResult, Schema } from "effect"
import { writeFileAtomically } from "../../files/atomic-write-node.ts"
import { withNodeFileSystem } from "../node-file-system.ts"
import { fileProblem } from "../../../framework/files/file-errors.ts"

/** The JSON index files of the engine's folders (caches, checkpoints, trained models): read checked, written atomically. */

export class DataFolderError extends Schema.TaggedError<DataFolderError>()("DataFolderError", {
  file: Schema.String,
  reason: Schema.String,
  /** The failure of the file operation, when one failed. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/** Reads and checks a JSON index file with `schema`; every problem names the file. */
export const readIndexFile = <A, I>(file: string, schema: Schema.Schema<A, I>): Effect.Effect<A, DataFolderError> =>
  withNodeFileSystem((fs) => fs.readFileString(file)).pipe(
    Effect.mapError((e) => new DataFolderError({ file, reason: `not readable (${fileProblem(e)})`, cause: e })),
    Effect.flatMap((text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (e) => new DataFolderError({ file, reason: `not readable JSON (${(e as Error).message})`, cause: e })
      })
    ),
    Effect.flatMap((json) =>
      Schema.decodeUnknown(schema)(json).pipe(
        Effect.mapError((e) => new DataFolderError({ file, reason: ParseResult.TreeFormatter.formatErrorSync(e) }))
      )
    )
  )

/** Writes `value` as JSON under a temporary name, then renames it into place. */
export const writeIndexFile = (file: string, value: unknown): Effect.Effect<void, DataFolderError> =>
  writeFileAtomically(file, `${JSON.stringify(value, null, 1)}\n`).pipe(
    Effect.mapError((e) => new DataFolderError({ file, reason: `cannot write (${fileProblem(e)})`, cause: e }))
  )
