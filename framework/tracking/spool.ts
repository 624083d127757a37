import { Duration, Effect, Either, Option, Schema, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { copyFile, link, mkdir, open, readdir, readFile, realpath, rename, rm, stat, utimes, writeFile } from "node:fs/promises"
import type { FileHandle } from "node:fs/promises"
import { hostname } from "node:os"
import { basename, join } from "node:path"
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

const attempt = <A>(path: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (e) => new SpoolError({ path, reason: `${what}: ${e instanceof Error ? e.message : String(e)}` }) })

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code

/** Temp name, then rename: a reader sees the old file or the new one. */
const writeAtomically = (path: string, text: string) =>
  attempt(path, "cannot write", async () => {
    const temporary = join(path, "..", `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`)
    try {
      await writeFile(temporary, text)
      await rename(temporary, path)
    } catch (error) {
      await rm(temporary, { force: true })
      throw error
    }
  })

/** A hard link when the file system allows it (cheap, and the source is only ever replaced, never rewritten), else a copy. */
const linkOrCopy = async (from: string, to: string): Promise<void> => {
  const info = await stat(from)
  if (info.isDirectory()) {
    await mkdir(to, { recursive: true })
    for (const entry of await readdir(from)) await linkOrCopy(join(from, entry), join(to, entry))
    return
  }
  try {
    // The file itself: a link to a symbolic link would point elsewhere once in the spool.
    await link(await realpath(from), to)
  } catch {
    await copyFile(from, to)
  }
}

const SessionInfo = Schema.Struct({ target: Schema.String, createdAt: Schema.String, closed: Schema.optional(Schema.Boolean) })
const SentInfo = Schema.Struct({ items: Schema.Number, bytes: Schema.Number })
const decodeInfo = Schema.decodeUnknownEither(Schema.parseJson(SessionInfo))
const decodeSent = Schema.decodeUnknownEither(Schema.parseJson(SentInfo))
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

const makeSession = (
  dir: string,
  target: string,
  createdAt: string,
  written: number,
  sent: { items: number; bytes: number },
  opened: ReadonlyMap<string, RecordedRun>
) => {
  let read: FileHandle | undefined
  const state = { written, sent: sent.items, sentBytes: sent.bytes }
  const runs = new Map(opened)
  const journal = join(dir, "items.jsonl")
  const session: SpoolSession & { state: typeof state; closeReader: Effect.Effect<void> } = {
    dir,
    target,
    createdAt,
    state,
    counts: () => ({ written: state.written, sent: state.sent }),
    fileOf: (relative) => join(dir, relative),
    read: (max) =>
      attempt(journal, "cannot read", async () => {
        read ??= await open(journal, "r")
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
          const { bytesRead } = await read.read(buffer, filled, buffer.length - filled, position + filled)
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
      }),
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
            yield* attempt(dir, "cannot remove a sent file", () => rm(join(dir, "files", String(entry.n)), { recursive: true, force: true }))
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
      attempt(journal, "cannot read", async () => {
        const text = (await readFile(journal)).subarray(0, state.sentBytes).toString("utf8")
        for (const line of text.split("\n")) {
          const item = Either.getOrUndefined(parseSpoolLine(line))
          if (item?.op === "open" && item.run === ref) return Option.some(item)
        }
        return Option.none()
      }),
    closeReader: Effect.promise(async () => {
      await read?.close()
      read = undefined
    })
  }
  return session
}

/** Lines in a journal after a byte offset (a finished line ends with a newline). */
const countLines = (file: string, from: number) =>
  attempt(file, "cannot read", async () => {
    const handle = await open(file, "r").catch((e: unknown) => (codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)))
    if (handle === undefined) return 0
    try {
      const buffer = Buffer.alloc(1 << 20)
      let count = 0
      for (let position = from;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position)
        if (bytesRead === 0) return count
        for (let i = 0; i < bytesRead; i++) if (buffer[i] === 10) count++
        position += bytesRead
      }
    } finally {
      await handle.close()
    }
  })

/**
 * This process's session for `target`: items appended to it are on disk before `append` returns. Closing
 * the scope removes the session when everything was sent, else marks it closed for the next process.
 */
export const openOwnSession = (spoolDir: string, target: string): Effect.Effect<OwnSpoolSession, SpoolError, Scope.Scope> =>
  Effect.gen(function*() {
    const id = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`
    const dir = join(spoolDir, `${me}~${process.pid}~${id}`)
    const info = join(dir, "session.json")
    const journal = join(dir, "items.jsonl")
    yield* attempt(dir, "cannot create", () => mkdir(join(dir, "files"), { recursive: true }))
    const createdAt = new Date().toISOString()
    yield* writeAtomically(info, JSON.stringify({ target, createdAt }))
    const handle = yield* attempt(journal, "cannot open", () => open(journal, "a"))
    const session = makeSession(dir, target, createdAt, 0, { items: 0, bytes: 0 }, new Map())
    let discarded = false
    const writing = yield* Effect.makeSemaphore(1)
    // A sign of life for processes on other hosts sharing the cache (SLURM jobs): see `staleAfter`.
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(
      Effect.sleep(Duration.minutes(1)),
      Effect.ignore(attempt(info, "cannot touch", () => utimes(info, new Date(), new Date())))
    )))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.promise(() => handle.close())
        yield* session.closeReader
        if (!discarded) yield* finishSession(session)
      })
    )
    const append: OwnSpoolSession["append"] = (item, attach) =>
      writing.withPermits(1)(Effect.gen(function*() {
        const n = session.state.written
        let line = item
        if (attach !== undefined) {
          const relative = `files/${n}/${basename(attach)}`
          yield* attempt(attach, "cannot keep a copy", async () => {
            await mkdir(join(dir, "files", String(n)), { recursive: true })
            await linkOrCopy(attach, join(dir, relative))
          })
          line = item.op === "image" ? { ...item, file: relative } : item.op === "artifact" ? { ...item, path: relative } : item
        }
        yield* attempt(journal, "cannot append", () => handle.write(`${spoolLine(line)}\n`))
        session.state.written = n + 1
      }))
    return {
      ...session,
      append,
      discard: Effect.suspend(() => {
        discarded = true
        return Effect.ignore(attempt(dir, "cannot remove", () => rm(dir, { recursive: true, force: true })))
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
    return codeOf(error) === "EPERM"
  }
}

/**
 * Takes over the sessions of `spoolDir` that no live process owns (for `target` only, when given), oldest
 * first. Empty sessions are removed. Closing the scope releases their files; a session sent in full is
 * removed by whoever sends its last item (see `finishSession`).
 */
export const claimSessions = (
  spoolDir: string,
  target?: string
): Effect.Effect<ReadonlyArray<SpoolSession>, SpoolError, Scope.Scope> =>
  Effect.gen(function*() {
    const names = yield* attempt(spoolDir, "cannot list", () => readdir(spoolDir).catch((e: unknown) => (codeOf(e) === "ENOENT" ? [] : Promise.reject(e))))
    const claimed: Array<SpoolSession> = []
    for (const name of names) {
      const [host, pid, id] = name.split("~")
      if (id === undefined) continue
      const dir = join(spoolDir, name)
      const infoFile = join(dir, "session.json")
      const text = yield* Effect.promise(() => readFile(infoFile, "utf8").catch(() => undefined))
      const info = text === undefined ? undefined : Either.getOrUndefined(decodeInfo(text))
      // A session being created has no session.json yet: its folder's time stands in.
      const modified = yield* Effect.promise(() => stat(infoFile).catch(() => stat(dir)).then((s) => s.mtimeMs, () => 0))
      const alive = info?.closed !== true &&
        (host === me ? pidAlive(Number(pid)) : Date.now() - modified < Duration.toMillis(staleAfter))
      if (alive) continue
      if (info === undefined) {
        // Its process died before writing session.json, so before writing any item: nothing to send.
        // (With items, session.json was damaged by something else: the folder is left as it is.)
        const items = yield* Effect.promise(() => stat(join(dir, "items.jsonl")).then((s) => s.size, () => 0))
        if (items === 0) yield* Effect.ignore(attempt(dir, "cannot remove", () => rm(dir, { recursive: true, force: true })))
        continue
      }
      if (target !== undefined && info.target !== target) continue
      const mine = join(spoolDir, `${me}~${process.pid}~${id}`)
      const won = yield* Effect.promise(() => rename(dir, mine).then(() => true, () => false))
      if (!won) continue
      const sentText = yield* Effect.promise(() => readFile(join(mine, "sent.json"), "utf8").catch(() => undefined))
      const sent = (sentText === undefined ? undefined : Either.getOrUndefined(decodeSent(sentText))) ?? { items: 0, bytes: 0 }
      const written = sent.items + (yield* countLines(join(mine, "items.jsonl"), sent.bytes))
      const runsText = yield* Effect.promise(() => readFile(join(mine, "runs.json"), "utf8").catch(() => undefined))
      const opened = new Map(Object.entries((runsText === undefined ? undefined : Either.getOrUndefined(decodeRuns(runsText))) ?? {}))
      const session = makeSession(mine, info.target, info.createdAt, written, sent, opened)
      yield* Effect.addFinalizer(() => session.closeReader)
      if (written === sent.items) {
        yield* finishSession(session)
        continue
      }
      claimed.push(session)
    }
    return claimed.sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  })

/** Removes a session whose items were all delivered; one with items left is marked closed for the next process. */
export const finishSession = (session: SpoolSession): Effect.Effect<void> => {
  const { sent, written } = session.counts()
  return Effect.ignore(
    sent === written
      ? attempt(session.dir, "cannot remove", () => rm(session.dir, { recursive: true, force: true }))
      : writeAtomically(join(session.dir, "session.json"), JSON.stringify({ target: session.target, createdAt: session.createdAt, closed: true }))
  )
}

/** The targets, other than `target`, that sessions in the spool were written for (for a message). */
export const otherTargets = (spoolDir: string, target: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function*() {
    const names = yield* Effect.promise(() => readdir(spoolDir).catch(() => [] as Array<string>))
    const targets = new Set<string>()
    for (const name of names) {
      const text = yield* Effect.promise(() => readFile(join(spoolDir, name, "session.json"), "utf8").catch(() => undefined))
      const info = text === undefined ? undefined : Either.getOrUndefined(decodeInfo(text))
      if (info !== undefined && info.target !== target) targets.add(info.target)
    }
    return [...targets].sort()
  })
