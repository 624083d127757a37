/**
 * Times the tracking spool's acknowledgement (issue 15 §4: its sent.json now goes through the atomic-write
 * helper, which flushes the file and its folder): N items appended to a fresh session, then acknowledged
 * one at a time (the worst case: the tracking queue acknowledges each delivered batch of up to 200 items).
 * Prints the milliseconds per acknowledgement and the load average.
 * Usage: npx tsx bench/spool-ack.ts [N] [spool module]   (default 200, framework/tracking/spool.ts)
 */
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { mkdtemp, rm } from "node:fs/promises"
import { loadavg, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import type * as Spool from "../framework/tracking/spool.ts"

const n = Number(process.argv[2] ?? 200)
const spool = (await import(pathToFileURL(resolve(process.argv[3] ?? "framework/tracking/spool.ts")).href)) as typeof Spool
const dir = await mkdtemp(join(tmpdir(), "sardine-spool-ack-"))

const perAck = await Effect.runPromise(
  Effect.scoped(Effect.gen(function*() {
    const session = yield* spool.openOwnSession(join(dir, "spool"), "http://127.0.0.1:9")
    for (let step = 0; step < n; step++) {
      yield* session.append({ op: "metrics", run: "r", points: [{ key: "loss", value: 1 / (step + 1), step, timestamp: step }] })
    }
    const entries = yield* session.read(n)
    const began = performance.now()
    for (const entry of entries) yield* session.ack([entry])
    return (performance.now() - began) / entries.length
  })).pipe(Effect.provide(NodeContext.layer))
)

await rm(dir, { recursive: true, force: true })
console.log(
  `${process.argv[3] ?? "framework/tracking/spool.ts"}: ${n} acknowledgements, ${perAck.toFixed(3)} ms each (load average ${
    loadavg().map((l) => l.toFixed(2)).join(" ")
  })`
)
