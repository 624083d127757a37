import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { amplitudeDistances, type DistanceDomain, domainBinning, histogramOfSorted, toDomain } from "../../framework/metrics/amplitude-distances.ts"
import { expectGolden, float32s, readGolden } from "./golden.ts"

const golden = readGolden("amplitude-distances.json")
const KEYS = ["wasserstein", "ks", "kl", "js", "hellinger", "bhattacharyya"] as const

describe("amplitude distances match scipy", () => {
  for (const c of golden.cases) {
    it(c.name, () => {
      const domain = c.domain as DistanceDomain
      const a = { name: "a", samples: toDomain(float32s(c.a), domain) }
      const b = { name: "b", samples: toDomain(float32s(c.b), domain) }
      const result = Effect.runSync(amplitudeDistances(a, b, domainBinning(domain, c.bins), c.klPseudoCount))
      for (const key of KEYS) expectGolden(result[key], c.expected[key], `${c.name}: ${key}`)
    })
  }

  it("identical sets are at distance exactly 0", () => {
    const samples = float32s(golden.cases[0].a)
    const result = Effect.runSync(amplitudeDistances({ name: "a", samples }, { name: "b", samples }, domainBinning({ kind: "amplitude" }, 64), 1))
    for (const key of KEYS) expect(result[key], key).toBe(0)
  })
})

describe("histogram bins follow numpy.histogram", () => {
  it("left-closed bins, the last one closed on both sides, values outside dropped", () => {
    const sorted = Float32Array.of(-0.1, 0, 0.25, 0.5, 0.74, 0.75, 1, 1.2)
    expect(Array.from(histogramOfSorted(sorted, { bins: 4, lo: 0, hi: 1 }))).toEqual([1, 1, 2, 2])
  })
})

describe("amplitude distances refuse bad input, naming the set", () => {
  const binning = domainBinning({ kind: "amplitude" }, 8)
  const reason = (a: Float32Array, b: Float32Array, bins = binning) => {
    const result = Effect.runSync(Effect.either(amplitudeDistances({ name: "real/", samples: a }, { name: "generated/", samples: b }, bins, 1)))
    if (Either.isRight(result)) throw new Error("expected a failure")
    return `${result.left.input}: ${result.left.reason}`
  }
  it("NaN samples", () => {
    expect(reason(Float32Array.of(0.1, 0.2), Float32Array.of(0.3, NaN))).toBe("generated/: sample 1 is NaN, not a finite number")
  })
  it("an empty set", () => {
    expect(reason(new Float32Array(0), Float32Array.of(0.3))).toBe("real/: has no samples")
  })
  it("every sample outside the binning", () => {
    expect(reason(Float32Array.of(0.1), Float32Array.of(3, 4))).toBe("generated/: no sample falls in the binning range [0, 1]")
  })
  it("an empty binning range", () => {
    expect(reason(Float32Array.of(0.1), Float32Array.of(0.2), { bins: 4, lo: 1, hi: 1 })).toBe(
      "real/: the binning range [1, 1] must be finite with lo < hi"
    )
  })
  it("sets of different sizes are compared, not refused", () => {
    const result = Effect.runSync(
      amplitudeDistances({ name: "a", samples: Float32Array.of(0.1, 0.2, 0.3) }, { name: "b", samples: Float32Array.of(0.2) }, binning, 1)
    )
    expectGolden(result.ks, 1 / 3, "ks")
    expectGolden(result.wasserstein, (Math.fround(0.3) - Math.fround(0.1)) / 3, "wasserstein")
  })
})
