import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import { isNotFound } from "./file-errors.ts"

/*
 * Reads where "nothing there" is an answer: only a path that does not exist reads as absent. Any other
 * failure (no permission, a folder where a file should be, an I/O error) stays an error, so a damaged
 * cache or spool is reported instead of being taken for an empty one.
 */

const ifPresent = <A>(read: Effect.Effect<A, PlatformError>): Effect.Effect<Option.Option<A>, PlatformError> =>
  read.pipe(Effect.map(Option.some), Effect.catchIf(isNotFound, () => Effect.succeedNone))

/** The text of the file at `path`; none when nothing is there. */
export const readFileStringIfPresent = (path: string): Effect.Effect<Option.Option<string>, PlatformError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => ifPresent(fs.readFileString(path)))

/** What is at `path`; none when nothing is there. */
export const statIfPresent = (path: string): Effect.Effect<Option.Option<FileSystem.File.Info>, PlatformError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => ifPresent(fs.stat(path)))

/** The names in the folder at `path`; none when nothing is there. */
export const readDirectoryIfPresent = (path: string): Effect.Effect<Option.Option<ReadonlyArray<string>>, PlatformError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => ifPresent(fs.readDirectory(path)))
