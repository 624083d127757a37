import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { classAmplitudeStatistics, classIndexOfOneHot } from "../../framework/metrics/paired-class-statistics.ts"
import { pairedAmplitudeDistances, spreadOf } from "../../framework/metrics/paired-amplitude.ts"
import { blockLogMeans, layoutAgreement, layoutScales, pearson } from "../../framework/metrics/paired-layout.ts"
import { expectGolden, float32s, readGolden } from "../metrics/golden.ts"

/** The paired metrics against numpy / scipy (tools/make_paired_metric_goldens.py). */

interface GoldenPair {
  readonly labels: string
  readonly generated: string
  readonly truth: string
  readonly wasserstein: number
  readonly ks: number
  readonly layout: number
}

const golden = readGolden("paired.json")
const size: number = golden.size
const image = (name: string, b64: string) => ({ name, width: size, height: size, data: float32s(b64) })
const labelsOf = (b64: string) => {
  const buffer = Buffer.from(b64, "base64")
  return new Int32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength))
}
const pairs = (golden.pairs as ReadonlyArray<GoldenPair>).map((p, i) => ({
  ...p,
  g: image(`generated ${i}`, p.generated),
  t: image(`truth ${i}`, p.truth),
  labelValues: labelsOf(p.labels)
}))

describe("paired metrics", () => {
  it("per-pair Wasserstein-1 and KS, and their spread over the pairs, as scipy and numpy", async () => {
    const distances = await Effect.runPromise(Effect.forEach(pairs, (p) => pairedAmplitudeDistances(p.g, p.t, { kind: "amplitude" }, 256, 1)))
    distances.forEach((d, i) => {
      expectGolden(d.wasserstein, pairs[i]!.wasserstein, `pair ${i} W1`)
      expectGolden(d.ks, pairs[i]!.ks, `pair ${i} KS`)
    })
    for (const [name, values] of [["wasserstein", distances.map((d) => d.wasserstein)], ["ks", distances.map((d) => d.ks)]] as const) {
      const spread = spreadOf(values)
      for (const key of ["n", "mean", "min", "q25", "median", "q75", "max"] as const) expectGolden(spread[key], golden.spread[name][key], `${name} ${key}`)
    }
  })

  it("layout agreement: block log-mean correlation at 4 and 8 pixels, as numpy; it falls when the truths are shuffled", () => {
    expect(layoutScales(size, size)).toEqual(golden.scales)
    expect(layoutScales(32, 20)).toEqual([4])
    const matched = pairs.map((p) => layoutAgreement(p.g, p.t, golden.scales).score)
    matched.forEach((score, i) => expectGolden(score, pairs[i]!.layout, `pair ${i} layout`))
    const shuffled = pairs.map((p, i) => layoutAgreement(p.g, pairs[(i + 1) % pairs.length]!.t, golden.scales).score)
    shuffled.forEach((score, i) => expectGolden(score, golden.shuffledLayout[i], `shuffled pair ${i} layout`))
    expect(Math.min(...matched)).toBeGreaterThan(0.9)
    expect(spreadOf(shuffled).mean).toBeLessThan(spreadOf(matched).mean - 0.5)
    // A flat image agrees with no layout; an edge block that does not fit is left out.
    const flat = new Float64Array(16).fill(Math.log(0.3))
    expect(pearson(flat, blockLogMeans(pairs[0]!.t, 8))).toBe(0)
    expect(blockLogMeans({ name: "odd", width: 10, height: 9, data: new Float32Array(90).fill(0.5) }, 4)).toEqual(new Float64Array(4).fill(Math.log(0.5)))
  })

  it("per-class mean, CV and ENL inside the label map's regions, pooled over the pairs, generated and true", () => {
    const classes: ReadonlyArray<{ value: number; name: string }> = golden.classes
    const index = (labels: Int32Array) => labels.map((v) => classes.findIndex((c) => c.value === v))
    const stats = classAmplitudeStatistics(pairs.map((p) => ({ generated: p.g.data, truth: p.t.data, classes: index(p.labelValues) })), classes)
    stats.forEach((c, k) => {
      const expected = golden.perClass[k]
      expect([c.value, c.name]).toEqual([expected.value, expected.name])
      for (const side of ["generated", "truth"] as const) {
        expect(c[side].pixels).toBe(expected[side].pixels)
        for (const key of ["mean", "cv", "enl"] as const) expectGolden(c[side][key], expected[side][key], `${c.name} ${side} ${key}`)
      }
    })
    // Water dark, towns bright: what the table shows.
    expect(stats[0]!.truth.mean).toBeLessThan(stats[2]!.truth.mean / 10)
  })

  it("each pixel's class from a one-hot condition, −1 where no channel holds it", () => {
    const oneHot = Float32Array.from([0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    expect(Array.from(classIndexOfOneHot(oneHot, 3))).toEqual([1, 0, -1, 2])
  })
})
