import { Effect, Schema } from "effect"
import { readFile, rename, writeFile } from "node:fs/promises"

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

/** Non-finite numbers become null, as JSON has no NaN. Written to a temp name, then renamed. */
export const writeJsonAtomic = (file: string, value: unknown): Effect.Effect<void, JsonFileError> =>
  Effect.tryPromise({
    try: async () => {
      await writeFile(`${file}.tmp`, `${JSON.stringify(value, null, 1)}\n`)
      await rename(`${file}.tmp`, file)
    },
    catch: (e) => new JsonFileError({ file, reason: (e as Error).message })
  })
