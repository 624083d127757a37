import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option, Schema } from "effect"
import { join } from "node:path"
import { moveIntoPlace, writeFileAtomic } from "../files/atomic-write.ts"
import { readFileStringIfPresent, statIfPresent } from "../files/if-present.ts"
import { filesUnder, sha256File } from "../files/folder-files.ts"
import type { Step } from "../plan/step.ts"

/**
 * The content-addressed cache (DESIGN §3):
 *   <cache>/steps/<key>/     a finished step's output; it exists only once complete
 *   <cache>/partial/<key>/   an unfinished step's work folder, kept across interruptions so it can resume
 *   <cache>/locks/<key>/     held while a process runs the step
 * A step commits by renaming its partial folder into steps/, so a crash never leaves a
 * half-written output under steps/. Its manifest records every output file's size and SHA-256:
 * sizes are checked whenever the output is used, hashes by `sardine verify`.
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

/** One output file as committed: path relative to the step's folder ('/'-separated). */
export interface OutputFile {
  readonly path: string
  readonly size: number
  readonly sha256: string
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
  /** Absent in outputs committed before sardine recorded them; such outputs cannot be checked. */
  readonly files?: ReadonlyArray<OutputFile>
}

const failed = (path: string, what: string) => (e: PlatformError | Error) => new CacheError({ path, reason: `${what}: ${e.message}` })

export const cacheLayout = (root: string) => ({
  root,
  done: (key: string) => join(root, "steps", key),
  partial: (key: string) => join(root, "partial", key),
  lock: (key: string) => join(root, "locks", key)
})
export type CacheLayout = ReturnType<typeof cacheLayout>

/**
 * A step's output as found in the cache: absent, finished (sizes as recorded), or damaged (a file
 * missing, of another size, or an unreadable manifest) — a damaged output is not used.
 */
export type OutputState =
  | { readonly _tag: "missing" }
  | { readonly _tag: "done"; readonly manifest: StepManifest }
  | { readonly _tag: "damaged"; readonly problems: ReadonlyArray<string>; readonly files: ReadonlyArray<string> }

const sizeProblem = (dir: string, file: OutputFile): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  statIfPresent(join(dir, file.path)).pipe(
    Effect.map(Option.match({
      onNone: () => `${file.path} is missing`,
      onSome: (found) => Number(found.size) === file.size ? undefined : `${file.path} has ${found.size} bytes, ${file.size} when committed`
    })),
    Effect.catchAll((e) => Effect.succeed(`${file.path} cannot be inspected: ${e.message}`))
  )

/** Checks the output's manifest and every recorded file's size (cheap: no file is read). */
export const outputState = (cache: CacheLayout, key: string): Effect.Effect<OutputState, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const dir = cache.done(key)
    const read = yield* readFileStringIfPresent(join(dir, manifestName)).pipe(Effect.either)
    if (read._tag === "Left") return { _tag: "damaged", problems: [`${manifestName} cannot be read: ${read.left.message}`], files: [manifestName] } as const
    // An output folder without a manifest is the leftover of a crash during an older commit: not output.
    if (Option.isNone(read.right)) return { _tag: "missing" } as const
    let manifest: StepManifest
    try {
      manifest = JSON.parse(read.right.value) as StepManifest
    } catch (e) {
      return { _tag: "damaged", problems: [`${manifestName} is not valid JSON: ${(e as Error).message}`], files: [manifestName] } as const
    }
    const files = manifest.files ?? []
    const checked = yield* Effect.forEach(files, (f) => sizeProblem(dir, f), { concurrency: 16 })
    const damaged = files.filter((_, i) => checked[i] !== undefined)
    if (damaged.length === 0) return { _tag: "done", manifest } as const
    return { _tag: "damaged", problems: checked.filter((p) => p !== undefined), files: damaged.map((f) => f.path) } as const
  })

export const isDone = (cache: CacheLayout, key: string): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.map(outputState(cache, key), (s) => s._tag === "done")

/**
 * Reads every recorded file back and compares its SHA-256 (and size) with the manifest: what
 * `sardine verify` does. Returns the problems found; none for a sound output.
 */
export const verifyOutput = (cache: CacheLayout, manifest: StepManifest): Effect.Effect<ReadonlyArray<string>, never, FileSystem.FileSystem> =>
  Effect.forEach(manifest.files ?? [], (file) =>
    sha256File(join(cache.done(manifest.key), file.path)).pipe(
      Effect.map(({ sha256, size }) =>
        size !== file.size
          ? `${file.path} has ${size} bytes, ${file.size} when committed`
          : sha256 !== file.sha256
          ? `${file.path} has changed (SHA-256 ${sha256.slice(0, 12)}…, ${file.sha256.slice(0, 12)}… when committed)`
          : undefined
      ),
      Effect.orElseSucceed(() => `${file.path} cannot be read`)
    )).pipe(Effect.map((problems) => problems.filter((p): p is string => p !== undefined)))

/** The manifest of a finished step, from its output folder. */
export const readManifestIn = (dir: string): Effect.Effect<StepManifest, CacheError, FileSystem.FileSystem> => {
  const path = join(dir, manifestName)
  return Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
    Effect.mapError(failed(path, "cannot read the step manifest")),
    Effect.flatMap((text) =>
      Effect.try({
        try: () => JSON.parse(text) as StepManifest,
        catch: (e) => new CacheError({ path, reason: `the step manifest is not valid JSON: ${(e as Error).message}` })
      })
    )
  )
}

/**
 * The step's work folder, created if absent. When `resumable`, what an interrupted run left there
 * stays for the step to resume from; otherwise the folder starts empty (a step that cannot resume
 * must not mix an earlier attempt's files into its output).
 */
export const openWorkDir = (
  cache: CacheLayout,
  key: string,
  resumable: boolean
): Effect.Effect<{ dir: string; resumed: boolean }, CacheError, FileSystem.FileSystem> => {
  const dir = cache.partial(key)
  return Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const leftover = yield* fs.exists(dir).pipe(Effect.orElseSucceed(() => false))
    if (leftover && !resumable) yield* fs.remove(dir, { recursive: true }).pipe(Effect.mapError(failed(dir, "cannot clear the work folder")))
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(failed(dir, "cannot create the work folder")))
    return { dir, resumed: leftover && resumable }
  })
}

/** Removes a step's work folder (a step that cannot resume leaves nothing worth keeping when it fails). */
export const removeWorkDir = (cache: CacheLayout, key: string): Effect.Effect<void, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.remove(cache.partial(key), { recursive: true, force: true }).pipe(Effect.ignore))

/**
 * Records every output file's size and SHA-256 in the manifest, writes it into the work folder,
 * then renames the folder into place in one step (replacing a damaged or forced-over output).
 */
export const commit = (
  cache: CacheLayout,
  manifest: Omit<StepManifest, "files">
): Effect.Effect<void, CacheError, FileSystem.FileSystem> => {
  const from = cache.partial(manifest.key)
  const to = cache.done(manifest.key)
  return Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const listed = yield* filesUnder(from, (name) => name === manifestName).pipe(Effect.mapError(failed(from, "cannot list the step output")))
    const files = yield* Effect.forEach(listed, (file) =>
      sha256File(join(from, file.path)).pipe(
        Effect.map(({ sha256, size }): OutputFile => ({ path: file.path, size, sha256 })),
        Effect.mapError(failed(join(from, file.path), "cannot hash the output file"))
      ))
    yield* writeFileAtomic(join(from, manifestName), `${JSON.stringify({ ...manifest, files }, null, 2)}\n`).pipe(
      Effect.mapError(failed(from, "cannot write the step manifest"))
    )
    yield* fs.makeDirectory(join(cache.root, "steps"), { recursive: true }).pipe(Effect.mapError(failed(to, "cannot create the steps folder")))
    // An output already there (damaged, forced over, or a leftover without manifest) is replaced.
    yield* moveIntoPlace(from, to, { replace: true }).pipe(Effect.mapError(failed(to, "cannot commit the step output")))
  })
}
