import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Duration, Effect, Either, Option, Schema, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { basename, join } from "node:path"
import { writeFileAtomic } from "../files/atomic-write.ts"
import { isNotFound } from "../files/file-errors.ts"
import { readDirectoryIfPresent, readFileStringIfPresent, statIfPresent } from "../files/if-present.ts"
import { attachedFile, parseSpoolLine, type SpoolItem, spoolLine } from "./spool-item.ts"

/*
 * The tracking spool of a cache: everything a run logs is written here first and sent to the tracking
 * store from here, so what a dead server did not receive is still on disk for the next run or for
 * `sardine mlflow push <cache>`.
 *
 *   <cache>/tracking/spool/<host>~<pid>~<id>/   one session: what one process logged for one target
 *       session.json    {"target": …, "createdAt": …, "closed": true once its process ended}
 *       items.jsonl     one item per line (spool-item.ts), appended
 *       sent.json       {"items": n, "bytes": b}: the first n items (b bytes) were delivered
 *       runs.json       {"<run reference>": {"target", "runId", "experimentId"}}: where its runs were opened
 *       files/<n>/…     what item n sends (a hard link, or a copy across filesystems); removed once sent
 *
 * A session belongs to the process its folder names. Another process takes over a session whose process is
 * gone (closed, or its pid gone on this host, or no sign of life for `staleAfter` from another host) by
 * renaming the folder to its own name: a rename either wins or fails, so two processes never both send it.
 */

export class SpoolError extends Schema.TaggedError<SpoolError>()("SpoolError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `tracking spool ${this.path}: ${this.reason}`
  }
}

/** Where a cache keeps its tracking spool. */
export const spoolFolderOf = (cacheDir: string) => join(cacheDir, "tracking", "spool")

const failed = (path: string, what: string) => (e: PlatformError) => new SpoolError({ path, reason: `${what}: ${e.message}` })

/** A hard link when the file system allows it (cheap, and the source is only ever replaced, never rewritten), else a copy. */
const linkOrCopy = (fs: FileSystem.FileSystem, from: string, to: string): Effect.Effect<void, PlatformError> =>
  Effect.gen(function*() {
    const info = yield* fs.stat(from)
    if (info.type === "Directory") {
      yield* fs.makeDirectory(to, { recursive: true })
      for (const entry of yield* fs.readDirectory(from)) yield* linkOrCopy(fs, join(from, entry), join(to, entry))
      return
    }
    // The file itself: a link to a symbolic link would point elsewhere once in the spool.
    yield* Effect.flatMap(fs.realPath(from), (real) => fs.link(real, to)).pipe(Effect.orElse(() => fs.copyFile(from, to)))
  })

const SessionInfo = Schema.Struct({ target: Schema.String, createdAt: Schema.String, closed: Schema.optional(Schema.Boolean) })
const SentInfo = Schema.Struct({ items: Schema.Number, bytes: Schema.Number })
/** A session's session.json and sent.json, parsed. */
export const decodeInfo = Schema.decodeUnknownEither(Schema.parseJson(SessionInfo))
export const decodeSent = Schema.decodeUnknownEither(Schema.parseJson(SentInfo))
const decodeRuns = Schema.decodeUnknownEither(Schema.parseJson(Schema.Record({
  key: Schema.String,
  value: Schema.Struct({ target: Schema.String, runId: Schema.String, experimentId: Schema.String })
})))

const me = hostname().replace(/[^A-Za-z0-9.-]/g, "_")

/** A journal line read back: the item (or why the line is not one) and where the next line starts. */
export interface JournalEntry {
  readonly n: number
  readonly item: Either.Either<SpoolItem, string>
  readonly end: number
}

export interface SpoolSession {
  readonly dir: string
  /** Where its items go: a server URI without credentials, or an MLflow folder. */
  readonly target: string
  readonly createdAt: string
  /** Items written, and how many of them were delivered. */
  readonly counts: () => { readonly written: number; readonly sent: number }
  /** Up to `max` items after the delivered ones, in order. */
  readonly read: (max: number) => Effect.Effect<ReadonlyArray<JournalEntry>, SpoolError>
  /** Records every entry up to and including the last of `entries` as delivered, and removes their files. */
  readonly ack: (entries: ReadonlyArray<JournalEntry>) => Effect.Effect<void, SpoolError>
  /** The absolute path of a file an item names. */
  readonly fileOf: (relative: string) => string
  /** The MLflow runs its `open` items were delivered to, by run reference. */
  readonly openedRuns: () => ReadonlyMap<string, RecordedRun>
  /** Remembers where a run reference was opened, so whoever sends the rest of the session finds the run. */
  readonly recordRun: (ref: string, run: RecordedRun) => Effect.Effect<void, SpoolError>
  /** The delivered `open` item of a run reference, read back from the journal. */
  readonly deliveredOpen: (ref: string) => Effect.Effect<Option.Option<SpoolItem>, SpoolError>
  /** Removes the session when all its items were delivered; one with items left is marked closed for the next process. */
  readonly finish: Effect.Effect<void>
}

export interface RecordedRun {
  /** The store it was opened in. */
  readonly target: string
  readonly runId: string
  readonly experimentId: string
}

export interface OwnSpoolSession extends SpoolSession {
  /** Appends an item; `attach` (a file or folder) is linked into the session first, and the item names that copy. */
  readonly append: (item: SpoolItem, attach?: string) => Effect.Effect<void, SpoolError>
  /** Deletes the session and everything in it (a run that did not start). */
  readonly discard: Effect.Effect<void>
}

/**
 * A session's reading side, reading the journal through `reader`. The reader is opened by the caller in the
 * session's scope when the session is made, not at the first read: that may come from the tracking queue's
 * last flush, in a finalizer of the closing scope, which would close a reader opened then at once.
 */
const makeSession = (
  fs: FileSystem.FileSystem,
  reader: FileSystem.File,
  dir: string,
  target: string,
  createdAt: string,
  written: number,
  sent: { items: number; bytes: number },
  opened: ReadonlyMap<string, RecordedRun>
) => {
  const state = { written, sent: sent.items, sentBytes: sent.bytes }
  const runs = new Map(opened)
  const journal = join(dir, "items.jsonl")
  // A read seeks, then reads: one at a time, so two reads never move each other's position.
  const reading = Effect.unsafeMakeSemaphore(1)
  const writeAtomically = (path: string, text: string) =>
    writeFileAtomic(path, text).pipe(Effect.mapError(failed(path, "cannot write")), Effect.provideService(FileSystem.FileSystem, fs))
  const session: SpoolSession & { state: typeof state } = {
    dir,
    target,
    createdAt,
    state,
    counts: () => ({ written: state.written, sent: state.sent }),
    fileOf: (relative) => join(dir, relative),
    read: (max) =>
      Effect.gen(function*() {
        const entries: Array<JournalEntry> = []
        let position = state.sentBytes
        let buffer = Buffer.alloc(1 << 16)
        let filled = 0
        while (entries.length < max) {
          if (filled === buffer.length) {
            // One line longer than the buffer (a large params item): grow it.
            const bigger = Buffer.alloc(buffer.length * 2)
            buffer.copy(bigger)
            buffer = bigger
          }
          yield* reader.seek(position + filled, "start")
          const bytesRead = Number(yield* reader.read(buffer.subarray(filled)))
          filled += bytesRead
          let start = 0
          for (let newline = buffer.indexOf(10, start); newline >= 0 && newline < filled && entries.length < max; newline = buffer.indexOf(10, start)) {
            const line = buffer.toString("utf8", start, newline)
            entries.push({ n: state.sent + entries.length, item: parseSpoolLine(line), end: position + newline + 1 })
            start = newline + 1
          }
          if (start > 0) {
            buffer.copy(buffer, 0, start, filled)
            position += start
            filled -= start
          }
          // End of what is written (an unfinished last line waits for its newline, or was cut by a crash).
          if (bytesRead === 0) break
        }
        return entries
      }).pipe(Effect.mapError(failed(journal, "cannot read")), reading.withPermits(1)),
    ack: (entries) =>
      Effect.gen(function*() {
        const last = entries.at(-1)
        if (last === undefined) return
        yield* writeAtomically(join(dir, "sent.json"), JSON.stringify({ items: last.n + 1, bytes: last.end }))
        state.sent = last.n + 1
        state.sentBytes = last.end
        for (const entry of entries) {
          const file = Either.isRight(entry.item) ? attachedFile(entry.item.right) : undefined
          if (file !== undefined) {
            yield* fs.remove(join(dir, "files", String(entry.n)), { recursive: true, force: true }).pipe(
              Effect.mapError(failed(dir, "cannot remove a sent file"))
            )
          }
        }
      }),
    openedRuns: () => runs,
    recordRun: (ref, run) =>
      Effect.suspend(() => {
        runs.set(ref, run)
        return writeAtomically(join(dir, "runs.json"), JSON.stringify(Object.fromEntries(runs)))
      }),
    deliveredOpen: (ref) =>
      fs.readFile(journal).pipe(
        Effect.mapError(failed(journal, "cannot read")),
        Effect.map((bytes) => {
          const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).subarray(0, state.sentBytes).toString("utf8")
          for (const line of text.split("\n")) {
            const item = Either.getOrUndefined(parseSpoolLine(line))
            if (item?.op === "open" && item.run === ref) return Option.some(item)
          }
          return Option.none()
        })
      ),
    // Best effort: what is left is taken over (or removed when empty) by the next process.
    finish: Effect.suspend(() =>
      state.sent === state.written
        ? Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
        : Effect.ignore(writeAtomically(join(dir, "session.json"), JSON.stringify({ target, createdAt, closed: true })))
    )
  }
  return session
}

/** Lines in a journal after a byte offset (a finished line ends with a newline); none when there is no journal. */
const countLines = (file: string, from: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (Option.isNone(yield* statIfPresent(file))) return 0
    return yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(file, { flag: "r" })
      yield* handle.seek(from, "start")
      const buffer = Buffer.alloc(1 << 20)
      let count = 0
      for (;;) {
        const bytesRead = Number(yield* handle.read(buffer))
        if (bytesRead === 0) return count
        for (let i = 0; i < bytesRead; i++) if (buffer[i] === 10) count++
      }
    }))
  }).pipe(Effect.mapError(failed(file, "cannot read")))

/**
 * This process's session for `target`: items appended to it are on disk before `append` returns. Closing
 * the scope removes the session when everything was sent, else marks it closed for the next process.
 */
export const openOwnSession = (
  spoolDir: string,
  target: string
): Effect.Effect<OwnSpoolSession, SpoolError, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const id = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`
    const dir = join(spoolDir, `${me}~${process.pid}~${id}`)
    const info = join(dir, "session.json")
    const journal = join(dir, "items.jsonl")
    yield* fs.makeDirectory(join(dir, "files"), { recursive: true }).pipe(Effect.mapError(failed(dir, "cannot create")))
    const createdAt = new Date().toISOString()
    yield* writeFileAtomic(info, JSON.stringify({ target, createdAt })).pipe(Effect.mapError(failed(info, "cannot write")))
    let discarded = false
    const made: { session?: SpoolSession } = {}
    yield* Effect.addFinalizer(() => made.session === undefined || discarded ? Effect.void : made.session.finish)
    // Opened after the finalizer above is added, so closed before it runs (finalizers run in reverse): a
    // session folder on NFS could not be removed while its files are open.
    const handle = yield* fs.open(journal, { flag: "a" }).pipe(Effect.mapError(failed(journal, "cannot open")))
    const reader = yield* fs.open(journal, { flag: "r" }).pipe(Effect.mapError(failed(journal, "cannot open")))
    const session = makeSession(fs, reader, dir, target, createdAt, 0, { items: 0, bytes: 0 }, new Map())
    made.session = session
    const writing = yield* Effect.makeSemaphore(1)
    // A sign of life for processes on other hosts sharing the cache (SLURM jobs): see `staleAfter`.
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(
      Effect.sleep(Duration.minutes(1)),
      Effect.ignore(Effect.suspend(() => fs.utimes(info, new Date(), new Date())))
    )))
    const append: OwnSpoolSession["append"] = (item, attach) =>
      writing.withPermits(1)(Effect.gen(function*() {
        const n = session.state.written
        let line = item
        if (attach !== undefined) {
          const relative = `files/${n}/${basename(attach)}`
          yield* fs.makeDirectory(join(dir, "files", String(n)), { recursive: true }).pipe(
            Effect.zipRight(linkOrCopy(fs, attach, join(dir, relative))),
            Effect.mapError(failed(attach, "cannot keep a copy"))
          )
          line = item.op === "image" ? { ...item, file: relative } : item.op === "artifact" ? { ...item, path: relative } : item
        }
        yield* handle.writeAll(new TextEncoder().encode(`${spoolLine(line)}\n`)).pipe(Effect.mapError(failed(journal, "cannot append")))
        session.state.written = n + 1
      }))
    return {
      ...session,
      append,
      discard: Effect.suspend(() => {
        discarded = true
        return Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
      })
    }
  })

/** How long a session of another host may show no sign of life before it counts as abandoned. */
export const staleAfter = Duration.minutes(10)

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException | undefined)?.code === "EPERM"
  }
}

/** A session file's text; none when it is not there (not written yet, or the session was taken over meanwhile). */
export const readOptional = (file: string) => readFileStringIfPresent(file).pipe(Effect.mapError(failed(file, "cannot read")))

const statOptional = (path: string) => statIfPresent(path).pipe(Effect.mapError(failed(path, "cannot inspect")))

/** What a session folder's session.json says; none while it is being created, or when damaged. */
export const sessionInfo = (dir: string) =>
  Effect.map(readOptional(join(dir, "session.json")), (text) => Option.getOrUndefined(Option.flatMap(text, (t) => Option.getRight(decodeInfo(t)))))

/**
 * Whether a live process still owns the session folder `name` (in `dir`): not closed, and its pid alive on this
 * host, or a sign of life within `staleAfter` from another host.
 */
export const inUse = (name: string, dir: string, info: typeof SessionInfo.Type | undefined) =>
  Effect.gen(function*() {
    const [host, pid] = name.split("~")
    if (info?.closed === true) return false
    if (host === me) return pidAlive(Number(pid))
    // A session being created has no session.json yet: its folder's time stands in (none: it was just claimed by another).
    const found = yield* statOptional(join(dir, "session.json"))
    const stamp = Option.isSome(found) ? found : yield* statOptional(dir)
    const modified = Option.match(Option.flatMap(stamp, (s) => s.mtime), { onNone: () => 0, onSome: (d) => d.getTime() })
    return Date.now() - modified < Duration.toMillis(staleAfter)
  })

/**
 * Takes over the sessions of `spoolDir` that no live process owns (for `target` only, when given), oldest
 * first. Empty sessions are removed. Closing the scope releases their files; a session sent in full is
 * removed by whoever sends its last item (see `finishSession`).
 */
export const claimSessions = (
  spoolDir: string,
  target?: string
): Effect.Effect<ReadonlyArray<SpoolSession>, SpoolError, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = Option.getOrElse(yield* readDirectoryIfPresent(spoolDir).pipe(Effect.mapError(failed(spoolDir, "cannot list"))), () => [])
    const claimed: Array<SpoolSession> = []
    for (const name of names) {
      const id = name.split("~")[2]
      if (id === undefined) continue
      const dir = join(spoolDir, name)
      const info = yield* sessionInfo(dir)
      if (yield* inUse(name, dir, info)) continue
      if (info === undefined) {
        // Its process died before writing session.json, so before writing any item: nothing to send.
        // (With items, session.json was damaged by something else: the folder is left as it is.)
        const items = Option.match(yield* statOptional(join(dir, "items.jsonl")), { onNone: () => 0, onSome: (s) => Number(s.size) })
        if (items === 0) yield* Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
        continue
      }
      if (target !== undefined && info.target !== target) continue
      const mine = join(spoolDir, `${me}~${process.pid}~${id}`)
      // Another process that renamed it first leaves nothing at `dir`.
      const won = yield* fs.rename(dir, mine).pipe(
        Effect.as(true),
        Effect.catchIf(isNotFound, () => Effect.succeed(false)),
        Effect.mapError(failed(dir, "cannot take over"))
      )
      if (!won) continue
      const sentText = yield* readOptional(join(mine, "sent.json"))
      const sent = Option.getOrUndefined(Option.flatMap(sentText, (t) => Option.getRight(decodeSent(t)))) ?? { items: 0, bytes: 0 }
      const written = sent.items + (yield* countLines(join(mine, "items.jsonl"), sent.bytes))
      const runsText = yield* readOptional(join(mine, "runs.json"))
      const opened = new Map(Object.entries(Option.getOrUndefined(Option.flatMap(runsText, (t) => Option.getRight(decodeRuns(t)))) ?? {}))
      if (written === sent.items) {
        // Everything was delivered: nothing to read, the folder goes.
        yield* fs.remove(mine, { recursive: true, force: true }).pipe(Effect.ignore)
        continue
      }
      const reader = yield* fs.open(join(mine, "items.jsonl"), { flag: "r" }).pipe(Effect.mapError(failed(mine, "cannot open")))
      claimed.push(makeSession(fs, reader, mine, info.target, info.createdAt, written, sent, opened))
    }
    return claimed.sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  })

/** Removes a session whose items were all delivered; one with items left is marked closed for the next process. */
export const finishSession = (session: SpoolSession): Effect.Effect<void> => session.finish
