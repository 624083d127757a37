import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"

/**
 * The engine's operations require nothing (framework/services/engine.ts), so the tfjs adapter's file IO
 * runs on Node's FileSystem, provided here as adapters/files/atomic-write-node.ts provides it.
 */
export const withNodeFileSystem = <A, E>(
  use: (fs: FileSystem.FileSystem) => Effect.Effect<A, E, FileSystem.FileSystem>
): Effect.Effect<A, E> => Effect.flatMap(FileSystem.FileSystem, use).pipe(Effect.provide(NodeFileSystem.layer))

/** Whether something (file or folder) is at `path`; failing only when that cannot be told (no permission, …). */
export const pathExists = (path: string): Effect.Effect<boolean, PlatformError> => withNodeFileSystem((fs) => fs.exists(path))
