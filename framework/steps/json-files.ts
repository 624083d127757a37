import type { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { writeFileAtomic } from "../files/atomic-write.ts"

export class JsonFileError extends Schema.TaggedError<JsonFileError>()("JsonFileError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export const readJson = <A>(file: string): Effect.Effect<A, JsonFileError> =>
  Effect.tryPromise({
    try: async () => JSON.parse(await readFile(file, "utf8")) as A,
    catch: (e) => new JsonFileError({ file, reason: (e as Error).message })
  })

/** Non-finite numbers become null, as JSON has no NaN. Written atomically (atomic-write.ts). */
export const writeJsonAtomic = (file: string, value: unknown): Effect.Effect<void, JsonFileError, FileSystem.FileSystem> =>
  writeFileAtomic(file, `${JSON.stringify(value, null, 1)}\n`).pipe(
    Effect.mapError((e) => new JsonFileError({ file, reason: e.message }))
  )
