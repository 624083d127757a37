import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Duration, Effect, Option, Schema, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { dirname, join } from "node:path"
import { isAlreadyThere, temporaryNameFor, writeFileAtomic, writeFolderAtomic } from "../files/atomic-write.ts"
import { CacheError } from "./cache.ts"
import { isNotFound } from "../files/file-errors.ts"

/**
 * A step lock is a folder `<cache>/locks/<key>/` holding `owner.json`. It is built under a temporary
 * name and renamed into place, so it exists only with its owner written (a full disk leaves no
 * empty owner), and renaming onto an existing lock fails, so two processes never both hold it.
 * The holder touches `owner.json` every quarter of its lease; a lock is stale when its owner is
 * known dead (same host: the process is gone) or, from another host, when it was not touched for
 * longer than the lease its owner declared.
 */
export const LockOwner = Schema.Struct({
  pid: Schema.Int,
  host: Schema.String,
  since: Schema.String,
  /** Unique to one taking of the lock: a holder releases only its own lock. */
  token: Schema.String,
  /** Milliseconds without a heartbeat after which another host may take the lock over. */
  leaseMs: Schema.Number,
  /** Linux: the boot and the process's start time, so a pid reused after a restart is not taken for the owner. */
  bootId: Schema.optionalWith(Schema.String, { exact: true }),
  startTicks: Schema.optionalWith(Schema.String, { exact: true })
})
export type LockOwner = typeof LockOwner.Type

export const ownerFileName = "owner.json"

/** Ten minutes: long enough for a busy holder's heartbeat, short enough that a dead node does not block a study for long. */
export const defaultLockLease = Duration.minutes(10)

/** A lock whose owner cannot be read: not taken over (its owner is unknown), reported with how to clear it. */
export class LockUnreadable extends Schema.TaggedError<LockUnreadable>()("LockUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `step lock ${this.path} is unreadable (${this.reason}). If no sardine process is running this step, remove it: rm -r '${this.path}'`
  }
}

/**
 * A line of Linux's /proc, or undefined where there is none (another system, a process that just ended).
 * Every failure reads as "unknown": the facts are optional, and without them the check falls back to the
 * pid alone, which errs towards keeping a lock, never towards taking a live one over.
 */
const readProc = (file: string): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.map((text) => text.trim()),
    Effect.orElseSucceed(() => undefined)
  )

/** /proc/<pid>/stat field 22 (start time in clock ticks since boot); the command name may hold spaces and parentheses. */
const startTicksOf = (pid: number) => Effect.map(readProc(`/proc/${pid}/stat`), (stat) => stat?.split(") ").at(-1)?.split(" ")[19])

const thisBoot = readProc("/proc/sys/kernel/random/boot_id")

const processExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Whether the owner can be checked by pid: the same host name, and the same boot when both know it. */
const onThisHost = (owner: LockOwner) =>
  Effect.map(thisBoot, (boot) => owner.host === hostname() && (owner.bootId === undefined || boot === undefined || owner.bootId === boot))

/** Why a lock's owner is dead, or undefined while it may be alive. `heartbeatAgeMs` is the age of its owner file. */
export const staleness = (owner: LockOwner, heartbeatAgeMs: number): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (yield* onThisHost(owner)) {
      if (!processExists(owner.pid)) return `pid ${owner.pid} is gone`
      const ticks = owner.startTicks === undefined ? undefined : yield* startTicksOf(owner.pid)
      if (ticks !== undefined && ticks !== owner.startTicks) return `pid ${owner.pid} is now another process`
      return undefined
    }
    return heartbeatAgeMs > owner.leaseMs
      ? `no heartbeat for ${Math.round(heartbeatAgeMs / 1000)} s, longer than its lease of ${Math.round(owner.leaseMs / 1000)} s`
      : undefined
  })

export const describeOwner = (owner: LockOwner) => `pid ${owner.pid} on ${owner.host} since ${owner.since}`

type Found =
  | { readonly _tag: "gone" }
  | { readonly _tag: "owned"; readonly owner: LockOwner; readonly heartbeatAgeMs: number }

/** The owner of the lock at `path` and the age of its heartbeat; fails when the lock is there but unreadable. */
export const readLock = (path: string): Effect.Effect<Found, LockUnreadable, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = join(path, ownerFileName)
    const unreadable = (reason: string) => new LockUnreadable({ path, reason })
    // Only a missing owner file means "no owner here"; any other failure (a loop, an I/O error) is reported with the file.
    const cannotRead = (e: PlatformError) => unreadable(`cannot read ${file}: ${e.message}`)
    const info = yield* fs.stat(file).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeed(Option.none())),
      Effect.mapError(cannotRead)
    )
    if (Option.isNone(info)) {
      const folder = yield* fs.stat(path).pipe(Effect.catchIf(isNotFound, () => Effect.succeed(undefined)), Effect.mapError((e) => unreadable(e.message)))
      return folder === undefined ? { _tag: "gone" } as const : yield* Effect.fail(unreadable(`it has no ${ownerFileName}`))
    }
    const text = yield* fs.readFileString(file).pipe(
      Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
      Effect.mapError(cannotRead)
    )
    if (text === undefined) return { _tag: "gone" } as const
    const owner = yield* Effect.try(() => JSON.parse(text) as unknown).pipe(
      Effect.flatMap(Schema.decodeUnknown(LockOwner)),
      Effect.mapError(() => unreadable(`${ownerFileName} is not a lock owner: ${JSON.stringify(text.slice(0, 80))}`))
    )
    const touched = Option.getOrElse(Option.flatMap(info, (i) => i.mtime), () => new Date())
    return { _tag: "owned", owner, heartbeatAgeMs: Date.now() - touched.getTime() } as const
  })

const cannot = (path: string, what: string) => (e: PlatformError) => new CacheError({ path, reason: `cannot ${what}: ${e.message}` })

/**
 * Takes the lock if nobody holds it; its release (only if still ours) is registered in the scope in
 * the same uninterruptible region, so an interruption never leaves a lock behind.
 */
const tryTake = (path: string, leaseMs: number) =>
  Effect.uninterruptible(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const ticks = yield* startTicksOf(process.pid)
    const boot = yield* thisBoot
    const owner: LockOwner = {
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
      token: randomBytes(8).toString("hex"),
      leaseMs,
      ...(boot === undefined ? {} : { bootId: boot }),
      ...(ticks === undefined ? {} : { startTicks: ticks })
    }
    yield* fs.makeDirectory(dirname(path), { recursive: true }).pipe(Effect.mapError(cannot(path, "create the locks folder")))
    const taken = yield* writeFolderAtomic(path, (dir) => writeFileAtomic(join(dir, ownerFileName), `${JSON.stringify(owner)}\n`)).pipe(
      Effect.as(true),
      Effect.catchIf(isAlreadyThere, () => Effect.succeed(false)),
      Effect.mapError(cannot(path, "take the step lock"))
    )
    if (taken) yield* Effect.addFinalizer(() => release(path, owner.token))
    return taken ? owner : undefined
  }))

/** Removes the lock if it is still the one taken with `token` (a lock taken over by another process stays). */
const release = (path: string, token: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const found = yield* readLock(path).pipe(Effect.option)
    if (Option.isSome(found) && found.value._tag === "owned" && found.value.owner.token === token) {
      yield* fs.remove(path, { recursive: true })
    }
  }).pipe(Effect.ignore)

/**
 * Moves a stale lock out of the way. It is renamed first and checked afterwards: if another
 * process took the lock meanwhile, what was moved is its live lock, and it is put back.
 */
const removeStale = (path: string, stale: LockOwner) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const aside = temporaryNameFor(path)
    const moved = yield* fs.rename(path, aside).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
    if (!moved) return
    const found = yield* readLock(aside).pipe(Effect.option)
    const same = Option.isSome(found) && found.value._tag === "owned" && found.value.owner.token === stale.token
    if (same) yield* fs.remove(aside, { recursive: true }).pipe(Effect.ignore)
    else yield* fs.rename(aside, path).pipe(Effect.ignore)
  })

export interface LockEvents {
  /** Told once when the lock is held by a live owner and the step waits. */
  readonly onWait: (owner: string) => Effect.Effect<void>
  /** Told when a dead owner's lock is taken over. */
  readonly onTakeOver: (message: string) => Effect.Effect<void>
}

/**
 * Takes the lock at `path` for the scope if it is free or its owner is dead (taken over, with
 * `onTakeOver` told); returns the live owner holding it otherwise. While held, a heartbeat touches
 * the owner file every quarter of `lease`.
 */
export const tryHoldLock = (
  path: string,
  lease: Duration.Duration,
  onTakeOver: LockEvents["onTakeOver"]
): Effect.Effect<LockOwner | undefined, CacheError | LockUnreadable, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const leaseMs = Duration.toMillis(lease)
    for (;;) {
      const owner = yield* tryTake(path, leaseMs)
      if (owner !== undefined) {
        const ownerFile = join(path, ownerFileName)
        const beat = Effect.suspend(() => fs.utimes(ownerFile, new Date(), new Date())).pipe(Effect.ignore)
        yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(Duration.millis(leaseMs / 4)), beat)))
        return undefined
      }
      const found = yield* readLock(path)
      if (found._tag === "gone") continue
      const dead = yield* staleness(found.owner, found.heartbeatAgeMs)
      if (dead === undefined) return found.owner
      yield* onTakeOver(`taking over the lock ${path} of ${describeOwner(found.owner)}: ${dead}`)
      yield* removeStale(path, found.owner)
    }
  })

/**
 * Holds `path` as a lock for the scope. A live owner is waited for; the wait is interruptible
 * (Ctrl-C stops it at once). A dead owner's lock is taken over, an unreadable one fails with its path.
 */
export const holdLock = (
  path: string,
  lease: Duration.Duration,
  events: LockEvents
): Effect.Effect<void, CacheError | LockUnreadable, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    let told = false
    for (;;) {
      const holder = yield* tryHoldLock(path, lease, events.onTakeOver)
      if (holder === undefined) return
      if (!told) {
        yield* events.onWait(describeOwner(holder))
        told = true
      }
      yield* Effect.sleep("500 millis")
    }
  })
