import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
import { dirname } from "node:path"
import { type AtomicFileOptions, writeFileAtomic, writeFolderAtomic } from "../../framework/files/atomic-write.ts"

/**
 * `writeFileAtomic` and `writeFolderAtomic` after creating the parent folder, on Node's filesystem:
 * for adapters reached through services whose operations require nothing (the engines, image and
 * index writers, job records, MLflow folders), which therefore provide it here.
 */
export const writeFileAtomically = (
  file: string,
  data: string | Uint8Array,
  options: AtomicFileOptions = {}
): Effect.Effect<void, PlatformError> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory(dirname(file), { recursive: true })).pipe(
    Effect.zipRight(writeFileAtomic(file, data, options)),
    Effect.provide(NodeFileSystem.layer)
  )

/** `writeFolderAtomic` after creating the parent folder; `fill` may use the FileSystem too. */
export const writeFolderAtomically = <A, E, R>(
  folder: string,
  fill: (temporaryFolder: string) => Effect.Effect<A, E, R>,
  options: { readonly replace: boolean } = { replace: false }
): Effect.Effect<A, E | PlatformError, Exclude<R, FileSystem.FileSystem>> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory(dirname(folder), { recursive: true })).pipe(
    Effect.zipRight(writeFolderAtomic(folder, fill, options)),
    Effect.provide(NodeFileSystem.layer)
  )
