import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { run } from "../support/run-process.ts"
import { npyBytes, writeShard } from "./shard-builder.ts"

/*
 * Streaming keeps memory flat: the same reader over 7× more data (shards of 512² complex64 arrays,
 * 2 MiB each) peaks at about the same resident memory, so a shard set larger than memory is read
 * like a small one. Cost: ~250 MB of temporary shards and two short reader processes.
 */

const side = 512
const perShard = 16
const dir = mkdtempSync(join(tmpdir(), "sardine-shards-"))

// One speckle-like array for every sample: the reader's work and memory do not depend on the values.
const array = npyBytes("<c8", [side, side], Float32Array.from({ length: 2 * side * side }, (_, i) => ((i * 2654435761) % 4096) / 4096 - 0.5))

const writeShards = (name: string, shards: number) => {
  for (let s = 0; s < shards; s++) {
    writeShard(
      join(dir, name, `shard-${String(s).padStart(5, "0")}.tar`),
      Array.from({ length: perShard }, (_, i) => {
        const key = String(s * perShard + i).padStart(8, "0")
        return [
          [`${key}.sar.npy`, array],
          [`${key}.meta.json`, JSON.stringify({ caption: { MID: `scene ${key}` } })]
        ] as const
      }).flat()
    )
  }
}

const stream = async (name: string) => {
  const result = await run("test/webdataset/stream-shards.script.ts", [join(dir, name, "*.tar")])
  expect(result.code, result.stderr).toBe(0)
  return JSON.parse(result.stdout) as { readonly samples: number; readonly seconds: number; readonly peakRssMiB: number }
}

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("WebDataset streaming", () => {
  it("peak memory does not grow with the number of samples", async () => {
    writeShards("small", 1)
    writeShards("large", 7)
    const bytes = (name: string, shards: number) =>
      Array.from({ length: shards }, (_, s) => statSync(join(dir, name, `shard-${String(s).padStart(5, "0")}.tar`)).size).reduce((a, b) => a + b)
    const small = await stream("small")
    const large = await stream("large")
    expect([small.samples, large.samples]).toEqual([perShard, 7 * perShard])
    const extraMiB = (bytes("large", 7) - bytes("small", 1)) / 2 ** 20
    console.log(
      `peak RSS ${small.peakRssMiB.toFixed(0)} MiB for ${perShard} samples, ${large.peakRssMiB.toFixed(0)} MiB for ${7 * perShard} (${
        extraMiB.toFixed(0)
      } MiB more data)`
    )
    // 192 MiB more data; the peak may move by a few samples' buffers and GC timing, not by the data.
    expect(large.peakRssMiB - small.peakRssMiB).toBeLessThan(extraMiB / 4)
  }, 300_000)
})
