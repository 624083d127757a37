/**
 * Tick labels: as few digits as tell the ticks apart. Powers of ten on a log axis read as
 * 10⁻³ rather than 0.001 once they get long.
 */
const superscripts: Record<string, string> = {
  "-": "⁻",
  "0": "⁰",
  "1": "¹",
  "2": "²",
  "3": "³",
  "4": "⁴",
  "5": "⁵",
  "6": "⁶",
  "7": "⁷",
  "8": "⁸",
  "9": "⁹"
}

export const powerOfTen = (exponent: number): string => `10${String(exponent).split("").map((c) => superscripts[c]).join("")}`

/** Labels for a set of ticks on one axis, formatted alike. */
export const tickLabels = (ticks: ReadonlyArray<number>, kind: "linear" | "log"): ReadonlyArray<string> => {
  if (ticks.length === 0) return []
  if (kind === "log") {
    const exponents = ticks.map((t) => Math.floor(Math.log10(t) + 1e-9))
    // One style per axis: plain numbers while they stay short, powers of ten for all otherwise.
    const plain = exponents.every((e) => Math.abs(e) < 3)
    return ticks.map((t, i) => {
      if (plain) return String(Number(t.toPrecision(6)))
      const mantissa = Math.round(t / Math.pow(10, exponents[i]!))
      return mantissa === 1 ? powerOfTen(exponents[i]!) : `${mantissa}·${powerOfTen(exponents[i]!)}`
    })
  }
  const largest = Math.max(...ticks.map(Math.abs))
  // Exponent notation keeps very large or small labels short: 2e−4, 4e−4, …
  const exponential = largest !== 0 && (largest >= 1e5 || largest < 1e-3)
  for (let digits = 0; digits <= 8; digits++) {
    const labels = ticks.map((t) => minus(exponential ? (t === 0 ? "0" : t.toExponential(digits).replace("e+", "e")) : t.toFixed(digits)))
    if (
      new Set(labels).size === labels.length &&
      (exponential || labels.every((l, i) => Math.abs(Number(l.replace("−", "-")) - ticks[i]!) <= Math.abs(ticks[i]!) * 1e-9 + 1e-12))
    ) return labels
  }
  return ticks.map((t) => minus(String(t)))
}

/** The typographic minus sign, as in print. */
const minus = (text: string) => text.replace(/-/g, "−")
