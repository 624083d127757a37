import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
// Entry types without following links: a linked folder is not walked (a link to an ancestor would loop); FileSystem's stat follows links.
import { readdir } from "node:fs/promises"
import { basename, join } from "node:path"
import { TrackerFileError } from "../../framework/services/tracker.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"

export interface ArtifactFile {
  /** On disk. */
  readonly file: string
  /** Inside the run's artifacts, "/"-separated. */
  readonly artifactPath: string
  readonly size: number
}

const fileError = (file: string) => (error: PlatformError) => new TrackerFileError({ file, reason: fileProblem(error) })

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
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(localPath).pipe(Effect.mapError(fileError(localPath)))
    if (info.type === "File") return [{ file: localPath, artifactPath: joinArtifact(artifactPath, basename(localPath)), size: Number(info.size) }]
    if (info.type !== "Directory") return yield* Effect.fail(new TrackerFileError({ file: localPath, reason: "neither a file nor a folder" }))
    const out: Array<ArtifactFile> = []
    const walk = (dir: string, into: string): Effect.Effect<void, TrackerFileError> =>
      Effect.gen(function*() {
        const entries = yield* Effect.tryPromise({
          try: () => readdir(dir, { withFileTypes: true }),
          catch: (error) => new TrackerFileError({ file: dir, reason: (error as Error).message })
        })
        for (const entry of [...entries].sort((a, b) => a.name.localeCompare(b.name))) {
          const full = join(dir, entry.name)
          const target = joinArtifact(into, entry.name)
          if (entry.isDirectory()) yield* walk(full, target)
          else {
            const s = yield* fs.stat(full).pipe(Effect.mapError(fileError(full)))
            if (s.type === "File") out.push({ file: full, artifactPath: target, size: Number(s.size) })
          }
        }
      })
    yield* walk(localPath, artifactPath)
    return out
  }).pipe(Effect.provide(NodeFileSystem.layer))
