/** Maps data values to pixels, with tick positions a reader can take in at a glance. */
export interface Scale {
  readonly kind: "linear" | "log"
  readonly domain: readonly [number, number]
  readonly range: readonly [number, number]
  readonly map: (value: number) => number
  /** Candidate tick values, densest first is not implied: axis code thins them when labels collide. */
  readonly ticks: (count: number) => ReadonlyArray<number>
}

/** 1, 2 or 5 times a power of ten: the step of "nice" ticks. */
const niceStep = (span: number, count: number): number => {
  const raw = span / Math.max(1, count)
  const power = Math.pow(10, Math.floor(Math.log10(raw)))
  // Tolerance: 0.6 / 3 / 0.1 is 2.0000000000000004, which must still count as 2.
  const fraction = raw / power - 1e-9
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power
}

/** Extends [lo, hi] outward to multiples of the nice step, so the axis ends on a tick. */
export const niceDomain = (lo: number, hi: number, count = 5): readonly [number, number] => {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1
    return niceDomain(lo - pad, hi + pad, count)
  }
  const step = niceStep(hi - lo, count)
  return [Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12)), Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12))]
}

export const linearScale = (domain: readonly [number, number], range: readonly [number, number]): Scale => {
  const [d0, d1] = domain
  const [r0, r1] = range
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0)
  return {
    kind: "linear",
    domain,
    range,
    map: (v) => r0 + (v - d0) * k,
    ticks: (count) => {
      const step = niceStep(d1 - d0, count)
      const out: Array<number> = []
      // Integer multiples of the step avoid 0.30000000000000004.
      for (let i = Math.ceil(d0 / step - 1e-9); i * step <= d1 + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)))
      return out
    }
  }
}

/** Base-10 log scale; ticks at powers of ten (and 2, 5 times them when few decades are shown). */
export const logScale = (domain: readonly [number, number], range: readonly [number, number]): Scale => {
  const [l0, l1] = [Math.log10(domain[0]), Math.log10(domain[1])]
  const [r0, r1] = range
  const k = l1 === l0 ? 0 : (r1 - r0) / (l1 - l0)
  return {
    kind: "log",
    domain,
    range,
    map: (v) => r0 + (Math.log10(v) - l0) * k,
    ticks: (count) => {
      const decades = Math.ceil(l1) - Math.floor(l0)
      const every = Math.max(1, Math.ceil(decades / count))
      const multiples = decades * 3 <= count ? [1, 2, 5] : [1]
      const out: Array<number> = []
      for (let e = Math.floor(l0); e <= Math.ceil(l1); e += every) {
        for (const m of multiples) {
          const v = Number((m * Math.pow(10, e)).toPrecision(12))
          if (v >= domain[0] * (1 - 1e-9) && v <= domain[1] * (1 + 1e-9)) out.push(v)
        }
      }
      return out
    }
  }
}

/** Domain of a log axis covering the positive values, extended to whole decades. */
export const logDomain = (values: ReadonlyArray<number>): readonly [number, number] => {
  const range = extent(values.filter((v) => v > 0))
  if (range === undefined) return [0.1, 1]
  const lo = Math.pow(10, Math.floor(Math.log10(range[0])))
  const hi = Math.pow(10, Math.ceil(Math.log10(range[1])))
  return hi > lo ? [lo, hi] : [lo, lo * 10]
}

/** Smallest and largest finite value (a loop: spreading 100 000 values into Math.min overflows the stack). */
export const extent = (values: Iterable<number>): readonly [number, number] | undefined => {
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const v of values) {
    if (!Number.isFinite(v)) continue
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  return lo <= hi ? [lo, hi] : undefined
}
