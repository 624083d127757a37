import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { SpoolError } from "./spool.ts"

/**
 * A cache's identity for tracking: a random id kept in `<cache>/tracking/cache-id`, made on first use.
 * A run's MLflow runs are found again by their content key *and* this id, so a second cache folder gets
 * runs of its own while a moved or copied cache keeps finding its runs.
 */
export const cacheIdentity = (cacheDir: string): Effect.Effect<string, SpoolError> => {
  const file = join(cacheDir, "tracking", "cache-id")
  return Effect.tryPromise({
    try: async () => {
      const existing = await readFile(file, "utf8").then((t) => t.trim(), () => "")
      if (/^[0-9a-f]{12}$/.test(existing)) return existing
      await mkdir(join(cacheDir, "tracking"), { recursive: true })
      // Written aside, then linked into place: link fails when another process got there first, and then its id wins.
      const candidate = `${file}.${process.pid}-${randomUUID()}.tmp`
      await writeFile(candidate, `${randomUUID().replace(/-/g, "").slice(0, 12)}\n`)
      try {
        await link(candidate, file)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
      } finally {
        await rm(candidate, { force: true })
      }
      const id = (await readFile(file, "utf8")).trim()
      if (!/^[0-9a-f]{12}$/.test(id)) {
        throw new Error(`it holds ${JSON.stringify(id.slice(0, 40))}, not an id: delete the file (the cache then gets new MLflow runs)`)
      }
      return id
    },
    catch: (e) => new SpoolError({ path: file, reason: `cannot read or create the cache's id: ${e instanceof Error ? e.message : String(e)}` })
  })
}
