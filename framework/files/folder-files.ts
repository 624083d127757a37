import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import { createHash } from "node:crypto"
import { join } from "node:path"

/**
 * A regular file under a folder: its path relative to the folder ('/'-separated), size and
 * modification time; size -1 for an entry that cannot be inspected (a dangling symbolic link, no
 * permission), which is listed rather than failing the whole listing.
 */
export interface FolderFile {
  readonly path: string
  readonly size: number
  readonly mtimeMs: number
}

/**
 * Every regular file under `dir`, sorted by path. Symbolic links are followed (a Hugging Face
 * snapshot is a folder of links to blobs), each real folder once; pipes, sockets and devices are
 * left out (reading one could wait forever). `skip` leaves out entries by name.
 */
export const filesUnder = (
  dir: string,
  skip: (name: string) => boolean = () => false
): Effect.Effect<ReadonlyArray<FolderFile>, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const files: Array<FolderFile> = []
    const seen = new Set<string>()
    const walk = (absolute: string, relative: string): Effect.Effect<void, PlatformError> =>
      Effect.gen(function*() {
        const real = yield* fs.realPath(absolute)
        if (seen.has(real)) return
        seen.add(real)
        const names = (yield* fs.readDirectory(absolute)).filter((n) => !skip(n)).sort()
        for (const name of names) {
          const path = join(absolute, name)
          const rel = relative === "" ? name : `${relative}/${name}`
          const found = yield* fs.stat(path).pipe(Effect.option)
          if (Option.isNone(found)) {
            files.push({ path: rel, size: -1, mtimeMs: 0 })
            continue
          }
          const info = found.value
          if (info.type === "Directory") yield* walk(path, rel)
          else if (info.type === "File") {
            files.push({ path: rel, size: Number(info.size), mtimeMs: Option.match(info.mtime, { onNone: () => 0, onSome: (d) => d.getTime() }) })
          }
        }
      })
    yield* walk(dir, "")
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  })

/**
 * SHA-256 of a file's bytes, read in 4 MiB chunks into one buffer (memory stays flat on a file of many
 * gigabytes), with the number of bytes read. Reads into a reused buffer rather than Effect's file stream,
 * which cost twice the CPU time on a 2 GB file.
 */
export const sha256File = (path: string): Effect.Effect<{ readonly size: number; readonly sha256: string }, PlatformError, FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const file = yield* (yield* FileSystem.FileSystem).open(path, { flag: "r" })
    const hash = createHash("sha256")
    const buffer = new Uint8Array(4 * 1024 * 1024)
    let size = 0
    for (;;) {
      const read = Number(yield* file.read(buffer))
      if (read === 0) return { size, sha256: hash.digest("hex") }
      hash.update(buffer.subarray(0, read))
      size += read
    }
  }))
