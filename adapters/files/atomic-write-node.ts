import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import { dirname } from "node:path"
import { type AtomicFileOptions, writeFileAtomic } from "../../framework/files/atomic-write.ts"

/**
 * `writeFileAtomic` after creating the file's folder, on Node's filesystem: for adapters reached
 * through services whose operations require nothing (image and index writers, job records, MLflow
 * folders), which therefore provide it here.
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
