import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { writeFileAtomic } from "../files/atomic-write.ts"

export class JsonFileError extends Schema.TaggedError<JsonFileError>()("JsonFileError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export const readJson = <A>(file: string): Effect.Effect<A, JsonFileError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.flatMap((text) => Effect.try(() => JSON.parse(text) as A)),
    Effect.mapError((e) => new JsonFileError({ file, reason: e.message }))
  )

/** Non-finite numbers become null, as JSON has no NaN. Written atomically (atomic-write.ts). */
export const writeJsonAtomic = (file: string, value: unknown): Effect.Effect<void, JsonFileError, FileSystem.FileSystem> =>
  writeFileAtomic(file, `${JSON.stringify(value, null, 1)}\n`).pipe(
    Effect.mapError((e) => new JsonFileError({ file, reason: e.message }))
  )
