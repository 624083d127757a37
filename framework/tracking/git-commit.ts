import type { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import { dirname, isAbsolute, join, resolve } from "node:path"
import { readFileStringIfPresent, statIfPresent } from "../files/if-present.ts"

/*
 * The commit checked out in the repository holding a file, read from .git itself: sardine must not need
 * a git executable. Handles worktrees and submodules (a `.git` file naming the git dir), loose and packed
 * refs, and detached HEADs.
 */

/** Only what is not there reads as absent: an unreadable .git fails, naming it. */
const readText = readFileStringIfPresent

const isDirectory = (path: string) => Effect.map(statIfPresent(path), (s) => Option.isSome(s) && s.value.type === "Directory")

const HEX_COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/

/** The git dir of the repository containing `dir`, walking up to the file system root. */
const findGitDir = (dir: string): Effect.Effect<Option.Option<string>, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const dotGit = join(dir, ".git")
    if (yield* isDirectory(dotGit)) return Option.some(dotGit)
    const pointer = yield* readText(dotGit)
    if (Option.isSome(pointer)) {
      const target = /^gitdir:\s*(.+)\s*$/m.exec(pointer.value)?.[1]
      if (target !== undefined) return Option.some(isAbsolute(target) ? target : resolve(dir, target))
    }
    const parent = dirname(dir)
    return parent === dir ? Option.none() : yield* findGitDir(parent)
  })

const resolveRef = (gitDir: string, commonDir: string, ref: string): Effect.Effect<Option.Option<string>, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    for (const base of [gitDir, commonDir]) {
      const loose = yield* readText(join(base, ref))
      if (Option.isSome(loose) && HEX_COMMIT.test(loose.value.trim())) return Option.some(loose.value.trim())
    }
    const packed = yield* readText(join(commonDir, "packed-refs"))
    if (Option.isNone(packed)) return Option.none()
    for (const line of packed.value.split("\n")) {
      const [hash, name] = line.trim().split(" ")
      if (name === ref && hash !== undefined && HEX_COMMIT.test(hash)) return Option.some(hash)
    }
    return Option.none()
  })

export const gitCommitOf = (file: string): Effect.Effect<Option.Option<string>, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const start = resolve(file)
    const gitDir = yield* findGitDir((yield* isDirectory(start)) ? start : dirname(start))
    if (Option.isNone(gitDir)) return Option.none()
    const head = yield* readText(join(gitDir.value, "HEAD"))
    if (Option.isNone(head)) return Option.none()
    const text = head.value.trim()
    if (HEX_COMMIT.test(text)) return Option.some(text)
    const ref = /^ref:\s*(\S+)$/.exec(text)?.[1]
    if (ref === undefined) return Option.none()
    // A worktree's git dir keeps HEAD; branches live in the common dir it names.
    const common = yield* readText(join(gitDir.value, "commondir"))
    const commonDir = Option.isSome(common) ? resolve(gitDir.value, common.value.trim()) : gitDir.value
    return yield* resolveRef(gitDir.value, commonDir, ref)
  })
