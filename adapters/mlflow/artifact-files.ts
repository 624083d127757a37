import { Effect } from "effect"
import { readdir, stat } from "node:fs/promises"
import { basename, join } from "node:path"
import { TrackerFileError } from "../../framework/services/tracker.ts"

export interface ArtifactFile {
  /** On disk. */
  readonly file: string
  /** Inside the run's artifacts, "/"-separated. */
  readonly artifactPath: string
  readonly size: number
}

const fileError = (file: string) => (error: unknown) => new TrackerFileError({ file, reason: error instanceof Error ? error.message : String(error) })

const joinArtifact = (folder: string, name: string) => (folder === "" ? name : `${folder}/${name}`)

/**
 * What log_artifact / log_artifacts copy: a file to `<artifactPath>/<name>`, a folder's files (recursively,
 * sorted) under `<artifactPath>/`.
 */
export const artifactFiles = (
  localPath: string,
  artifactPath: string
): Effect.Effect<ReadonlyArray<ArtifactFile>, TrackerFileError> =>
  Effect.gen(function*() {
    const info = yield* Effect.tryPromise({ try: () => stat(localPath), catch: fileError(localPath) })
    if (info.isFile()) return [{ file: localPath, artifactPath: joinArtifact(artifactPath, basename(localPath)), size: info.size }]
    if (!info.isDirectory()) return yield* Effect.fail(new TrackerFileError({ file: localPath, reason: "neither a file nor a folder" }))
    const out: Array<ArtifactFile> = []
    const walk = (dir: string, into: string): Effect.Effect<void, TrackerFileError> =>
      Effect.gen(function*() {
        const entries = yield* Effect.tryPromise({ try: () => readdir(dir, { withFileTypes: true }), catch: fileError(dir) })
        for (const entry of [...entries].sort((a, b) => a.name.localeCompare(b.name))) {
          const full = join(dir, entry.name)
          const target = joinArtifact(into, entry.name)
          if (entry.isDirectory()) yield* walk(full, target)
          else {
            const s = yield* Effect.tryPromise({ try: () => stat(full), catch: fileError(full) })
            if (s.isFile()) out.push({ file: full, artifactPath: target, size: s.size })
          }
        }
      })
    yield* walk(localPath, artifactPath)
    return out
  })
