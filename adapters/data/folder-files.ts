import { realpath } from "node:fs/promises"
import { isAbsolute, join, relative, sep } from "node:path"

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

export const datasetFolder = async (path: string, followSymlinks: boolean): Promise<DatasetFolder> => ({
  path,
  real: await realpath(path),
  followSymlinks
})

export type FolderFile = { readonly path: string } | { readonly outside: string }

/**
 * The file `name` of the folder, or the real path it leads to outside the folder. A file that does
 * not exist is returned as is: reading it names that problem.
 */
export const folderFile = async (folder: DatasetFolder, name: string): Promise<FolderFile> => {
  const path = join(folder.path, name)
  if (folder.followSymlinks) return { path }
  const real = await realpath(path).catch(() => undefined)
  if (real === undefined) return { path }
  const within = relative(folder.real, real)
  return within === ".." || within.startsWith(`..${sep}`) || isAbsolute(within) ? { outside: real } : { path }
}

export const outsideReason = (real: string) => `a symbolic link to ${real}, outside the dataset folder (declare followSymlinks: true on the dataset to read it)`
