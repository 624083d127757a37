import { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { readFileStringIfPresent } from "../files/if-present.ts"
import { SpoolError } from "./spool.ts"

/**
 * A cache's identity for tracking: a random id kept in `<cache>/tracking/cache-id`, made on first use.
 * A run's MLflow runs are found again by their content key *and* this id, so a second cache folder gets
 * runs of its own while a moved or copied cache keeps finding its runs.
 */
const isCacheId = (text: string) => /^[0-9a-f]{12}$/.test(text)

export const cacheIdentity = (cacheDir: string): Effect.Effect<string, SpoolError, FileSystem.FileSystem> => {
  const file = join(cacheDir, "tracking", "cache-id")
  const cannot = (reason: string) => new SpoolError({ path: file, reason: `cannot read or create the cache's id: ${reason}` })
  return Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const existing = Option.map(yield* readFileStringIfPresent(file), (t) => t.trim())
    if (Option.isSome(existing) && isCacheId(existing.value)) return existing.value
    if (Option.isNone(existing)) {
      yield* fs.makeDirectory(join(cacheDir, "tracking"), { recursive: true })
      // Written aside, then linked into place: link fails when another process got there first, and then its id wins.
      const candidate = `${file}.${process.pid}-${randomUUID()}.tmp`
      yield* fs.writeFileString(candidate, `${randomUUID().replace(/-/g, "").slice(0, 12)}\n`).pipe(
        Effect.zipRight(fs.link(candidate, file).pipe(Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.void))),
        Effect.ensuring(fs.remove(candidate, { force: true }).pipe(Effect.ignore))
      )
    }
    const id = (yield* fs.readFileString(file)).trim()
    if (!isCacheId(id)) {
      return yield* cannot(`it holds ${JSON.stringify(id.slice(0, 40))}, not an id: delete the file (the cache then gets new MLflow runs)`)
    }
    return id
  }).pipe(Effect.catchTags({ BadArgument: (e) => Effect.fail(cannot(e.message)), SystemError: (e) => Effect.fail(cannot(e.message)) }))
}
