import { Effect } from "effect"
import { open } from "node:fs/promises"

/** At most this much of the end of a log is read: a job's log can be large. */
const tailBytes = 64 * 1024

/** The last `lines` lines of a job's output file, indented for a message; undefined when it cannot be read. */
export const logTail = (file: string, lines: number): Effect.Effect<string | undefined> =>
  Effect.promise(async () => {
    try {
      const handle = await open(file, "r")
      try {
        const { size } = await handle.stat()
        const start = Math.max(0, size - tailBytes)
        const buffer = Buffer.alloc(size - start)
        await handle.read(buffer, 0, buffer.length, start)
        const text = buffer.toString("utf8").replace(/\s+$/, "")
        return text.split("\n").slice(-lines).map((l) => `  | ${l}`).join("\n")
      } finally {
        await handle.close()
      }
    } catch {
      return undefined
    }
  })
