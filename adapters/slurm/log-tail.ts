import { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"

/** At most this much of the end of a log is read: a job's log can be large. */
const tailBytes = 64 * 1024

/** The end of a job's output file, or why it cannot be shown (absent, no permission, …). */
export type LogTail = { readonly tail: string } | { readonly unreadable: string }

/** The last `lines` lines of a job's output file, indented for a message, or why they cannot be read. */
export const logTail = (file: string, lines: number): Effect.Effect<LogTail, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const handle = yield* fs.open(file, { flag: "r" })
    const size = Number((yield* handle.stat).size)
    const start = Math.max(0, size - tailBytes)
    yield* handle.seek(start, "start")
    const bytes = Option.getOrElse(yield* handle.readAlloc(size - start), () => new Uint8Array())
    const text = new TextDecoder().decode(bytes).replace(/\s+$/, "")
    return { tail: text.split("\n").slice(-lines).map((l) => `  | ${l}`).join("\n") }
  }).pipe(
    Effect.scoped,
    Effect.catchAll((error) => Effect.succeed({ unreadable: isNotFound(error) ? "it does not exist" : fileProblem(error) }))
  )
