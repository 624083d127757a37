/**
 * sardine's interval and test primitives against scipy and statsmodels on fixed inputs
 * (goldens from tools/make_statistics_goldens.py).
 */
import { describe, expect, it } from "vitest"
import { bcaInterval, bootstrapStandardError, percentileInterval } from "../../framework/metrics/bootstrap-interval.ts"
import { holmAdjusted } from "../../framework/metrics/multiple-testing.ts"
import { normalCdf, normalQuantile } from "../../framework/metrics/normal-distribution.ts"
import { permutationPValue } from "../../framework/metrics/permutation-p-value.ts"
import { pairedSwaps, pooledSplits } from "../../framework/metrics/resampling-plans.ts"
import { ResamplingRandom } from "../../framework/metrics/resampling-random.ts"
import { regularizedIncompleteBeta, studentTCdf, studentTQuantile, studentTTwoSided } from "../../framework/metrics/student-t.ts"
import { differenceTest, meanInterval, sampleMean } from "../../framework/metrics/t-tests.ts"
import { expectGolden, goldenNumber, readGolden } from "./golden.ts"

const golden = readGolden("statistics.json")
type Num = number | string

/** Closer than the metric goldens' 1e-6: these are closed-form numbers, so 1e-12 relative. */
const expectClose = (actual: number, expected: Num, label: string, relative = 1e-12) => {
  const e = goldenNumber(expected)
  if (!Number.isFinite(e)) return expect(actual, label).toBe(e)
  const tolerance = relative * Math.abs(e) + 1e-300
  if (!(Math.abs(actual - e) <= tolerance)) expect.fail(`${label}: ${actual} differs from ${e} by ${Math.abs(actual - e)} (> ${tolerance})`)
}

const numbers = (xs: ReadonlyArray<Num>) => Float64Array.from(xs, goldenNumber)

describe("normal and Student-t distributions (scipy.special, scipy.stats.t)", () => {
  it("Φ matches ndtr to 1e-13 relative, deep into both tails", () => {
    // Far in the tail the rounding of x/√2 alone moves erfc by ~2x²·ε relative.
    for (const { x, p } of golden.special.ndtr as Array<{ x: number; p: Num }>) expectClose(normalCdf(x), p, `ndtr(${x})`, 1e-13)
  })
  it("Φ⁻¹ matches ndtri to 1e-13 relative", () => {
    for (const { p, x } of golden.special.ndtri as Array<{ p: number; x: Num }>) expectClose(normalQuantile(p), x, `ndtri(${p})`, 1e-13)
  })
  it("the regularized incomplete beta matches betainc", () => {
    for (const { a, b, value, x } of golden.special.betainc as Array<{ x: number; a: number; b: number; value: Num }>) {
      expectClose(regularizedIncompleteBeta(x, a, b), value, `betainc(${a}, ${b}, ${x})`, 1e-11)
    }
  })
  it("t distribution function, two-sided tail and quantile match scipy.stats.t, fractional df included", () => {
    for (const c of golden.special.tCdf as Array<{ t: number; df: number; cdf: Num; twoSided: Num }>) {
      expectClose(studentTCdf(c.t, c.df), c.cdf, `t.cdf(${c.t}, ${c.df})`, 1e-11)
      expectClose(studentTTwoSided(c.t, c.df), c.twoSided, `2 t.sf(|${c.t}|, ${c.df})`, 1e-11)
    }
    for (const c of golden.special.tQuantile as Array<{ p: number; df: number; t: Num }>) {
      expectClose(studentTQuantile(c.p, c.df), c.t, `t.ppf(${c.p}, ${c.df})`, 1e-10)
    }
  })
})

const statistics: Record<string, (x: Float64Array) => number> = {
  mean: (x) => x.reduce((a, b) => a + b, 0) / x.length,
  std: (x) => {
    const m = x.reduce((a, b) => a + b, 0) / x.length
    return Math.sqrt(x.reduce((a, v) => a + (v - m) ** 2, 0) / (x.length - 1))
  },
  ratioOfMeans: (x) => x.reduce((a, b) => a + b, 0) / x.reduce((a, b) => a + b * b, 0)
}

const leaveOneOut = (data: Float64Array, statistic: (x: Float64Array) => number) =>
  Float64Array.from(data, (_, i) => statistic(Float64Array.from([...data.slice(0, i), ...data.slice(i + 1)])))

describe("bootstrap intervals (scipy.stats.bootstrap given the same resamples)", () => {
  it("percentile and BCa intervals and the standard error equal scipy's for the mean, the std and a ratio", () => {
    for (const c of golden.bootstrap as Array<Record<string, any>>) {
      const data = numbers(c.data)
      const statistic = statistics[c.statistic]!
      const distribution = numbers(c.distribution)
      const label = `${c.statistic}, n = ${data.length}`
      for (const level of [0.95, 0.9]) {
        const percentile = percentileInterval(distribution, level)
        expectClose(percentile.low, c[`percentile@${level}`][0], `${label}: percentile low @${level}`)
        expectClose(percentile.high, c[`percentile@${level}`][1], `${label}: percentile high @${level}`)
        const bca = bcaInterval(goldenNumber(c.observed), distribution, [leaveOneOut(data, statistic)], level)
        expect(bca.method).toBe("bca")
        expectClose(bca.low, c[`bca@${level}`][0], `${label}: BCa low @${level}`, 1e-10)
        expectClose(bca.high, c[`bca@${level}`][1], `${label}: BCa high @${level}`, 1e-10)
      }
      expectClose(bootstrapStandardError(distribution), c.standardError, `${label}: standard error`)
    }
  })

  it("BCa of a two-sample difference takes its acceleration from each sample's jackknife", () => {
    const { a, b, distribution } = golden.twoSampleBootstrap
    const x = numbers(a)
    const y = numbers(b)
    const mean = statistics.mean!
    const observed = mean(x) - mean(y)
    const jackknife = [leaveOneOut(x, (s) => mean(s) - mean(y)), leaveOneOut(y, (s) => mean(x) - mean(s))]
    const bca = bcaInterval(observed, numbers(distribution), jackknife, 0.95)
    expectClose(bca.low, golden.twoSampleBootstrap["bca@0.95"][0], "low", 1e-10)
    expectClose(bca.high, golden.twoSampleBootstrap["bca@0.95"][1], "high", 1e-10)
  })

  it("a distribution that does not vary gives the point as its interval, not NaN", () => {
    const flat = new Float64Array(200).fill(3)
    expect(bcaInterval(3, flat, [new Float64Array(10).fill(3)], 0.95)).toMatchObject({ low: 3, high: 3 })
  })
})

describe("permutation tests (scipy.stats.permutation_test)", () => {
  const meanDifference = (x: Float64Array, y: Float64Array) => statistics.mean!(x) - statistics.mean!(y)

  it("paired, exact: the 2ⁿ swaps give scipy's null distribution and p-value", () => {
    const c = golden.permutation.find((p: any) => p.kind === "paired" && p.exact)
    const x = numbers(c.x)
    const y = numbers(c.y)
    const swaps = pairedSwaps(x.length, 10_000, new ResamplingRandom(1))
    expect(swaps.exact).toBe(true)
    const nullDistribution = Float64Array.from({ length: swaps.count }, (_, k) => {
      const flags = swaps.at(k)
      return meanDifference(x.map((v, i) => (flags[i] ? y[i]! : v)), y.map((v, i) => (flags[i] ? x[i]! : v)))
    }).sort()
    numbers(c.null).forEach((v, i) => expectClose(nullDistribution[i]!, v, `null[${i}]`, 1e-12))
    expectClose(permutationPValue(meanDifference(x, y), nullDistribution, true), c.p, "p")
  })

  it("paired, randomised: the p-value of scipy's own null distribution (observed arrangement counted once)", () => {
    const c = golden.permutation.find((p: any) => p.kind === "paired" && !p.exact)
    expectClose(permutationPValue(goldenNumber(c.observed), numbers(c.null), false), c.p, "p")
  })

  it("unpaired, exact: every split of the pooled sample gives scipy's null distribution and p-value", () => {
    const c = golden.permutation.find((p: any) => p.kind === "unpaired")
    const pooled = numbers([...c.x, ...c.y])
    const splits = pooledSplits(pooled.length, c.x.length, 10_000, new ResamplingRandom(1))
    expect(splits.exact).toBe(true)
    const nullDistribution = Float64Array.from({ length: splits.count }, (_, k) => {
      const flags = splits.at(k)
      return meanDifference(pooled.filter((_, i) => flags[i] === 1), pooled.filter((_, i) => flags[i] === 0))
    }).sort()
    numbers(c.null).forEach((v, i) => expectClose(nullDistribution[i]!, v, `null[${i}]`, 1e-12))
    expectClose(permutationPValue(goldenNumber(c.observed), nullDistribution, true), c.p, "p")
  })
})

describe("t tests and corrections (scipy.stats.ttest_ind / ttest_1samp, statsmodels multipletests)", () => {
  it("Welch's test: t, degrees of freedom, p and the 95 % interval of the difference", () => {
    for (const c of golden.welch as Array<Record<string, any>>) {
      const test = differenceTest(sampleMean(Array.from(numbers(c.a))), sampleMean(Array.from(numbers(c.b))), 0.95)
      const label = `${c.a.length} vs ${c.b.length}`
      expectClose(test.t, c.t, `${label}: t`, 1e-12)
      expectClose(test.df, c.df, `${label}: df`, 1e-12)
      expectClose(test.p, c.p, `${label}: p`, 1e-10)
      expectClose(test.low, c.interval[0], `${label}: low`, 1e-10)
      expectClose(test.high, c.interval[1], `${label}: high`, 1e-10)
    }
  })

  it("the t interval of a mean over replicates", () => {
    for (const c of golden.meanInterval as Array<Record<string, any>>) {
      const interval = meanInterval(sampleMean(Array.from(numbers(c.values))), 0.95)
      expectClose(interval.low, c.interval[0], `n = ${c.values.length}: low`, 1e-10)
      expectClose(interval.high, c.interval[1], `n = ${c.values.length}: high`, 1e-10)
    }
  })

  it("Holm's adjusted p-values and rejections", () => {
    for (const c of golden.holm as Array<{ p: Array<Num>; adjusted: Array<Num>; reject: Array<boolean> }>) {
      const adjusted = holmAdjusted(c.p.map(goldenNumber))
      adjusted.forEach((p, i) => expectGolden(p, c.adjusted[i]!, `adjusted[${i}]`))
      expect(adjusted.map((p) => p <= 0.05)).toEqual(c.reject)
    }
  })
})
