import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { basename, dirname, join } from "node:path"

/**
 * Writing so that a reader never sees half a file or half a folder: everything goes to a temporary
 * name in the destination's own folder (so the rename stays on one filesystem and is atomic), is
 * flushed to disk, and is renamed into place only when complete. A failure or an interruption removes
 * the temporary; a crash (kill -9, power loss) can leave one behind, always under a name that
 * `isTemporaryName` recognises and nothing reads as finished.
 */

const temporarySuffix = ".tmp"

/** `.<name>.<pid>-<random>.tmp`: hidden, unique to this writer, recognisable by `sardine clean`. */
export const temporaryNameFor = (path: string): string =>
  join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}${temporarySuffix}`)

/** Whether a file or folder name is one `temporaryNameFor` makes (a leftover of an interrupted write). */
export const isTemporaryName = (name: string): boolean => /^\..+\.\d+-[0-9a-f]{8}\.tmp$/.test(name)

/** Flushes a file or folder entry to disk; some filesystems cannot sync a folder, which only costs durability. */
const sync = (fs: FileSystem.FileSystem, path: string, strict: boolean) =>
  Effect.scoped(Effect.flatMap(fs.open(path, { flag: "r" }), (file) => file.sync)).pipe(
    strict ? (effect) => effect : Effect.ignore
  )

const removeQuietly = (fs: FileSystem.FileSystem, path: string) => fs.remove(path, { recursive: true, force: true }).pipe(Effect.ignore)

export interface AtomicFileOptions {
  /**
   * The folder the temporary file goes in (default: the destination's), on the same filesystem; for
   * destinations whose folder a reader lists (an MLflow run's metrics/, whose every file is a metric).
   */
  readonly temporaryFolder?: string
}

/**
 * Writes the file at `path` atomically: `fill` writes it at the temporary path it is given (streaming,
 * copying, …), which is then flushed, renamed onto `path` (replacing any existing file) and the folder
 * flushed. The temporary is removed if `fill` or the rename fails or is interrupted.
 */
export const writeFileAtomicWith = <A, E, R>(
  path: string,
  fill: (temporary: string) => Effect.Effect<A, E, R>,
  options: AtomicFileOptions = {}
): Effect.Effect<A, E | PlatformError, R | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const named = temporaryNameFor(path)
    const temporary = options.temporaryFolder === undefined ? named : join(options.temporaryFolder, basename(named))
    const value = yield* Effect.gen(function*() {
      const value = yield* fill(temporary)
      yield* sync(fs, temporary, true)
      yield* fs.rename(temporary, path)
      return value
    }).pipe(Effect.onError(() => removeQuietly(fs, temporary)))
    yield* sync(fs, dirname(path), false)
    return value
  })

/** Writes `data` to `path` atomically (see `writeFileAtomicWith`). */
export const writeFileAtomic = (
  path: string,
  data: string | Uint8Array,
  options: AtomicFileOptions = {}
): Effect.Effect<void, PlatformError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    writeFileAtomicWith(
      path,
      (temporary) =>
        Effect.scoped(Effect.flatMap(
          fs.open(temporary, { flag: "wx" }),
          (file) => file.writeAll(typeof data === "string" ? new TextEncoder().encode(data) : data)
        )),
      options
    ))

/** A folder could not be put in place because something already is at its path. */
export const isAlreadyThere = (error: PlatformError): boolean => {
  if (error._tag !== "SystemError") return false
  const code = (error.cause as NodeJS.ErrnoException | undefined)?.code
  return error.reason === "AlreadyExists" || code === "ENOTEMPTY" || code === "EEXIST"
}

/**
 * Renames the finished folder `from` to `to`. With `replace`, a folder already at `to` is first
 * moved aside (and removed after), so readers see the old folder or the new one, never a mix;
 * without, the rename fails (see `isAlreadyThere`) when a non-empty folder is at `to`.
 */
export const moveIntoPlace = (
  from: string,
  to: string,
  options: { readonly replace: boolean }
): Effect.Effect<void, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const aside = temporaryNameFor(to)
    const movedAside = options.replace ? yield* fs.rename(to, aside).pipe(Effect.as(true), Effect.orElseSucceed(() => false)) : false
    yield* fs.rename(from, to).pipe(Effect.onError(() => movedAside ? fs.rename(aside, to).pipe(Effect.ignore) : Effect.void))
    if (movedAside) yield* removeQuietly(fs, aside)
    yield* sync(fs, dirname(to), false)
  })

/**
 * Builds a folder atomically: `fill` writes into a fresh temporary folder next to `path` (its files
 * should be written and synced by the caller, e.g. with `writeFileAtomic`), which is then renamed to
 * `path`. Unless `replace` is set, the rename fails (see `isAlreadyThere`) when a non-empty folder is
 * already at `path`, so two processes never both create it: this is what makes it usable as a lock.
 */
export const writeFolderAtomic = <A, E, R>(
  path: string,
  fill: (temporaryFolder: string) => Effect.Effect<A, E, R>,
  options: { readonly replace: boolean } = { replace: false }
): Effect.Effect<A, E | PlatformError, R | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const temporary = temporaryNameFor(path)
    return yield* Effect.gen(function*() {
      yield* fs.makeDirectory(temporary)
      const value = yield* fill(temporary)
      yield* sync(fs, temporary, false)
      yield* moveIntoPlace(temporary, path, options)
      return value
    }).pipe(Effect.onError(() => removeQuietly(fs, temporary)))
  })
