import { Effect, Schema } from "effect"
import { mkdir, readFile, rename, rm, writeFile, stat } from "node:fs/promises"
import { join } from "node:path"
import type { Step } from "../plan/step.ts"

/**
 * The content-addressed cache (DESIGN §3):
 *   <cache>/steps/<key>/     a finished step's output; it exists only once complete
 *   <cache>/partial/<key>/   an unfinished step's work folder, kept across interruptions so it can resume
 *   <cache>/locks/<key>/     held while a process runs the step
 * A step commits by renaming its partial folder into steps/, so a crash never leaves a
 * half-written output under steps/.
 */
export const manifestName = "sardine-step.json"

export class CacheError extends Schema.TaggedError<CacheError>()("CacheError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

export interface StepManifest {
  readonly id: string
  readonly kind: Step["kind"]
  readonly key: string
  readonly experiments: ReadonlyArray<string>
  readonly inputs: ReadonlyArray<{ readonly role: string; readonly key: string }>
  readonly config: unknown
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationMs: number
}

const attempt = <A>(path: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (e) => new CacheError({ path, reason: `${what}: ${(e as Error).message}` }) })

export const cacheLayout = (root: string) => ({
  root,
  done: (key: string) => join(root, "steps", key),
  partial: (key: string) => join(root, "partial", key),
  lock: (key: string) => join(root, "locks", key)
})
export type CacheLayout = ReturnType<typeof cacheLayout>

export const isDone = (cache: CacheLayout, key: string): Effect.Effect<boolean> =>
  Effect.promise(() => stat(join(cache.done(key), manifestName)).then(() => true, () => false))

/** The manifest of a finished step, from its output folder. */
export const readManifestIn = (dir: string): Effect.Effect<StepManifest, CacheError> => {
  const path = join(dir, manifestName)
  return attempt(path, "cannot read the step manifest", () => readFile(path, "utf8")).pipe(
    Effect.map((text) => JSON.parse(text) as StepManifest)
  )
}

/** The step's work folder, created if absent; what an interrupted run left there stays for resuming. */
export const openWorkDir = (cache: CacheLayout, key: string): Effect.Effect<{ dir: string; resumed: boolean }, CacheError> => {
  const dir = cache.partial(key)
  return Effect.gen(function*() {
    const resumed = yield* Effect.promise(() => stat(dir).then(() => true, () => false))
    yield* attempt(dir, "cannot create the work folder", () => mkdir(dir, { recursive: true }))
    return { dir, resumed }
  })
}

/** Writes the manifest into the work folder, then renames the folder into place in one step. */
export const commit = (cache: CacheLayout, manifest: StepManifest): Effect.Effect<void, CacheError> => {
  const from = cache.partial(manifest.key)
  const to = cache.done(manifest.key)
  return Effect.gen(function*() {
    yield* attempt(from, "cannot write the step manifest", () =>
      writeFile(join(from, manifestName), `${JSON.stringify(manifest, null, 2)}\n`))
    yield* attempt(to, "cannot create the steps folder", () => mkdir(join(cache.root, "steps"), { recursive: true }))
    // A leftover folder without a manifest (from a crash during an older commit) is not output.
    yield* attempt(to, "cannot clear a stale output folder", () => rm(to, { recursive: true, force: true }))
    yield* attempt(to, "cannot commit the step output", () => rename(from, to))
  })
}
