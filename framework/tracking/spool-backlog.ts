import { FileSystem } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { join } from "node:path"
import { filesUnder } from "../files/folder-files.ts"
import { readDirectoryIfPresent } from "../files/if-present.ts"
import { decodeSent, inUse, readOptional, sessionInfo, SpoolError } from "./spool.ts"
import { parseSpoolLine } from "./spool-item.ts"

/** What a cache's tracking spool holds, not sent yet, for one tracking store. */
export interface SpoolBacklog {
  readonly target: string
  readonly items: number
  /** The unsent part of the journals, and the files the items send (hard links into the cache where possible). */
  readonly bytes: number
  /** The names of the runs the items belong to. */
  readonly runs: ReadonlyArray<string>
  /** When the oldest session holding them was written. */
  readonly since: string
}

const cannotRead = (path: string) => (e: { readonly message: string }) => new SpoolError({ path, reason: `cannot read: ${e.message}` })

/**
 * What the sessions in `spoolDir` that no live process owns did not deliver, by store, oldest store first. Read before a run
 * sends any of them, so that it can say at start what waits: a store that never comes back keeps its items here
 * (nothing expires them, as nothing else holds them), and the user decides where they go (`sardine mlflow push`).
 */
export const spoolBacklog = (spoolDir: string): Effect.Effect<ReadonlyArray<SpoolBacklog>, SpoolError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = Option.getOrElse(yield* readDirectoryIfPresent(spoolDir).pipe(Effect.mapError(cannotRead(spoolDir))), () => [])
    const byTarget = new Map<string, { items: number; bytes: number; runs: Set<string>; since: string }>()
    // A run opened by one session may have items waiting in a later one: its name is looked up in all of them.
    const runNames = new Map<string, string>()
    for (const name of names) {
      const dir = join(spoolDir, name)
      const info = yield* sessionInfo(dir)
      // A live process's session is its own to send (another worker of the same run, say): not waiting.
      if (info === undefined || (yield* inUse(name, dir, info))) continue
      const sent = Option.getOrUndefined(Option.flatMap(yield* readOptional(join(dir, "sent.json")), (t) => Option.getRight(decodeSent(t)))) ??
        { items: 0, bytes: 0 }
      // Taken over by another process meanwhile: that one tells its own story.
      const journal = yield* fs.readFile(join(dir, "items.jsonl")).pipe(
        Effect.map(Option.some),
        Effect.catchAll(() => Effect.succeedNone)
      )
      if (Option.isNone(journal)) continue
      const bytes = Buffer.from(journal.value.buffer, journal.value.byteOffset, journal.value.byteLength)
      const waiting = new Set<string>()
      let items = 0
      let at = 0
      for (const line of bytes.toString("utf8").split("\n")) {
        const start = at
        at += Buffer.byteLength(line) + 1
        // A line without its newline was cut by a crash: no item.
        const item = at <= bytes.length ? Either.getOrUndefined(parseSpoolLine(line)) : undefined
        if (item === undefined) continue
        if (item.op === "open") runNames.set(item.run, item.name)
        if (start < sent.bytes) continue
        items += 1
        waiting.add(item.run)
      }
      if (items === 0) continue
      const files = yield* filesUnder(join(dir, "files")).pipe(Effect.orElseSucceed(() => []))
      const entry = byTarget.get(info.target) ?? { items: 0, bytes: 0, runs: new Set<string>(), since: info.createdAt }
      entry.items += items
      entry.bytes += bytes.length - sent.bytes + files.reduce((sum, f) => sum + Math.max(0, f.size), 0)
      for (const ref of waiting) entry.runs.add(ref)
      if (info.createdAt < entry.since) entry.since = info.createdAt
      byTarget.set(info.target, entry)
    }
    return [...byTarget]
      .map(([target, b]) => ({
        target,
        items: b.items,
        bytes: b.bytes,
        runs: [...new Set([...b.runs].map((ref) => runNames.get(ref) ?? ref))].sort(),
        since: b.since
      }))
      .sort((a, b) => a.since.localeCompare(b.since))
  })

/** One line for the user: how much waits, of which runs, since when, for which store. */
export const backlogText = (backlog: SpoolBacklog, spoolDir: string): string =>
  `tracking spool ${spoolDir}: ${backlog.items} item(s), ${(backlog.bytes / 1e6).toFixed(1)} MB, of run(s) ${backlog.runs.join(", ")} ` +
  `wait for ${backlog.target} (the oldest since ${backlog.since})`
