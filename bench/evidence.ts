/**
 * What the intervals and comparisons of issue 20 cost, on an evaluation shaped like the demo
 * study's (5 prompts × 8 sampling seeds = 40 generated images of 32 × 32, 160 reference images,
 * 64-dimensional CLIP embeddings): the evaluate step's bootstrap of every estimate, and one
 * comparison between two strategies as the report step makes it (a paired permutation test,
 * exact over 2⁸ swaps, and a paired bootstrap of the difference), at the declared default of
 * 2000 resamples.
 *
 *   npx tsx bench/evidence.ts [--resamples N] [--repeats N]
 *
 * No peer: no other tool computes these. The machine is shared: the load average is printed with the times.
 */
import { Effect } from "effect"
import { loadavg } from "node:os"
import { evaluationIntervals } from "../framework/metrics/evaluation-intervals.ts"
import { compareStrategies } from "../framework/metrics/strategy-comparison.ts"
import { evidenceOf, referenceSet } from "../test/metrics/evidence-fixture.ts"

const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name)
  return at >= 0 ? Number(process.argv[at + 1]) : fallback
}
const resamples = option("--resamples", 2000)
const repeats = option("--repeats", 3)

const shape = {
  prompts: [
    { split: "seen" as const, looks: 1, clip: 30 },
    { split: "seen" as const, looks: 2, clip: 28 },
    { split: "seen" as const, looks: 3, clip: 25 },
    { split: "unseen" as const, looks: 2, clip: 12 },
    { split: "unseen" as const, looks: 4, clip: 10 }
  ],
  seeds: [0, 1, 2, 3, 4, 5, 6, 7],
  side: 32,
  dim: 64
}
const reference = referenceSet(160, 32, 4, 64)
const settings = { level: 0.95, resamples, seed: 0 }
const probabilities = Array.from({ length: 101 }, (_, i) => i / 100)

const [a, b] = await Effect.runPromise(Effect.all([evidenceOf(shape, 1, reference), evidenceOf({ ...shape, extraLooks: 1 }, 2, reference)]))

const timed = async (label: string, run: () => Promise<unknown>) => {
  const times: Array<number> = []
  for (let i = 0; i < repeats; i++) {
    const started = performance.now()
    await run()
    times.push(performance.now() - started)
  }
  const sorted = [...times].sort((x, y) => x - y)
  console.log(`${label}: median ${(sorted[Math.floor(sorted.length / 2)]! / 1000).toFixed(2)} s, min ${(sorted[0]! / 1000).toFixed(2)} s (${repeats} runs)`)
}

console.log(`demo-shaped evaluation: ${a.images.length} images of 32 × 32 against ${reference.images.length}, ${resamples} resamples`)
await timed(
  "evaluate step's intervals (bootstrap of every estimate and the distribution bands)",
  () => Effect.runPromise(evaluationIntervals(a, settings, probabilities))
)
const replicate = async (evidence: typeof a) => ({
  evidence,
  estimates: (await Effect.runPromise(evaluationIntervals(evidence, { ...settings, resamples: 100 }, []))).estimates
})
const ra = await replicate(a)
const rb = await replicate(b)
await timed(
  "one comparison (exact paired permutation test over 256 swaps + paired bootstrap)",
  () => Effect.runPromise(compareStrategies({ name: "a", replicates: [ra] }, { name: "b", replicates: [rb] }, settings))
)
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} (2 cores, shared)`)
