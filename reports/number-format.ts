/**
 * Numbers as both report formats print them, so the HTML and Markdown tables hold the same text.
 * JSON has no NaN or infinity: evaluation.json stores them as null, shown as "n/a".
 */
const minus = (text: string) => text.replace(/^-/, "−").replace(/e-/, "e−")

/** Four significant digits; exponent notation outside [0.001, 100000). */
export const formatValue = (value: number | null | undefined): string => {
  if (value === null || value === undefined || Number.isNaN(value)) return "n/a"
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞"
  if (value === 0) return "0"
  const magnitude = Math.abs(value)
  if (magnitude >= 1e5 || magnitude < 1e-3) return minus(value.toExponential(3).replace("e+", "e"))
  return minus(String(Number(value.toPrecision(4))))
}

/** A confidence interval as tables print it: "[0.168, 0.181]"; empty when not computed. */
export const formatInterval = (low: number | null | undefined, high: number | null | undefined): string =>
  typeof low === "number" && typeof high === "number" && !Number.isNaN(low) && !Number.isNaN(high) ? `[${formatValue(low)}, ${formatValue(high)}]` : ""

/** A p-value: "0.012", "< 0.001" below a thousandth, "n/a" when no test was made. */
export const formatP = (p: number | null | undefined): string => {
  if (typeof p !== "number" || Number.isNaN(p)) return "n/a"
  if (p < 0.001) return "< 0.001"
  return p >= 0.1 ? p.toFixed(2) : p.toFixed(3)
}

/** A relative change as a signed percentage: "−45 %", "+3.2 %". */
export const formatChange = (fraction: number): string => {
  if (!Number.isFinite(fraction)) return "n/a"
  const percent = fraction * 100
  const magnitude = Math.abs(percent)
  const digits = magnitude >= 10 ? 0 : 1
  const text = magnitude.toFixed(digits)
  if (Number(text) === 0) return "±0 %"
  return `${percent < 0 ? "−" : "+"}${text} %`
}

/** A duration from milliseconds: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export const formatDuration = (ms: number | undefined): string => {
  if (ms === undefined || !Number.isFinite(ms)) return "n/a"
  if (ms < 1000) return `${Math.round(ms)} ms`
  const seconds = ms / 1000
  if (seconds < 60) return `${seconds.toFixed(1)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds - minutes * 60)).padStart(2, "0")} s`
  const hours = Math.floor(minutes / 60)
  return `${hours} h ${String(minutes - hours * 60).padStart(2, "0")} min`
}
