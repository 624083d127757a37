import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect } from "effect"
import { isAbsolute, join, relative, sep } from "node:path"
import { isNotFound } from "../../framework/files/file-errors.ts"

/*
 * Which files of a dataset folder may be read. metadata.jsonl names are checked as text (no
 * absolute paths, no `..`); here the real path is checked too, so a symbolic link inside the
 * folder that leads outside it is refused unless the dataset declares `followSymlinks: true`.
 */

export interface DatasetFolder {
  /** As declared, resolved against the declaration's folder: the paths sardine names. */
  readonly path: string
  /** Symbolic links resolved: what "inside" is checked against. */
  readonly real: string
  readonly followSymlinks: boolean
}

export const datasetFolder = (path: string, followSymlinks: boolean): Effect.Effect<DatasetFolder, PlatformError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.realPath(path)).pipe(Effect.map((real) => ({ path, real, followSymlinks })))

export type FolderFile = { readonly path: string } | { readonly outside: string }

/**
 * The file `name` of the folder, or the real path it leads to outside the folder. A file that does
 * not exist is returned as is: reading it names that problem.
 */
export const folderFile = (folder: DatasetFolder, name: string): Effect.Effect<FolderFile, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const path = join(folder.path, name)
    if (folder.followSymlinks) return { path }
    const fs = yield* FileSystem.FileSystem
    const real = yield* fs.realPath(path).pipe(Effect.catchIf(isNotFound, () => Effect.succeed(undefined)))
    if (real === undefined) return { path }
    const within = relative(folder.real, real)
    return within === ".." || within.startsWith(`..${sep}`) || isAbsolute(within) ? { outside: real } : { path }
  })

export const outsideReason = (real: string) => `a symbolic link to ${real}, outside the dataset folder (declare followSymlinks: true on the dataset to read it)`
