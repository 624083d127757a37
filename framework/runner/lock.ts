import { Effect } from "effect"
import { mkdir, readFile, rm, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { dirname, join } from "node:path"
import { CacheError } from "./cache.ts"

/** Who holds a step lock. */
interface LockOwner {
  readonly pid: number
  readonly host: string
  readonly since: string
}

const ownerFile = (path: string) => join(path, "owner.json")

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readOwner = (path: string): Effect.Effect<LockOwner | undefined> =>
  Effect.promise(() => readFile(ownerFile(path), "utf8").then((t) => JSON.parse(t) as LockOwner, () => undefined))

const tryAcquire = (path: string): Effect.Effect<boolean, CacheError> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(dirname(path), { recursive: true })
      try {
        await mkdir(path)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
        throw e
      }
      const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() }
      await writeFile(ownerFile(path), JSON.stringify(owner))
      return true
    },
    catch: (e) => new CacheError({ path, reason: `cannot take the step lock: ${(e as Error).message}` })
  })

/**
 * Holds `path` as a lock for the scope (mkdir is atomic, so two processes never both get it).
 * A lock left by a dead process on this host is taken over; a live owner is waited for,
 * with `onWait` told once who holds it.
 */
export const holdLock = (path: string, onWait: (owner: string) => Effect.Effect<void>) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      let told = false
      while (!(yield* tryAcquire(path))) {
        const owner = yield* readOwner(path)
        if (owner !== undefined && owner.host === hostname() && !alive(owner.pid)) {
          yield* Effect.promise(() => rm(path, { recursive: true, force: true }))
          continue
        }
        if (!told) {
          yield* onWait(owner === undefined ? "another process" : `pid ${owner.pid} on ${owner.host} since ${owner.since}`)
          told = true
        }
        yield* Effect.sleep("500 millis")
      }
    }),
    () => Effect.promise(() => rm(path, { recursive: true, force: true }))
  )
