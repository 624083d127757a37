/** The median of timings (the upper one of an even count); NaN when nothing was timed, so a row says so. */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.slice().sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}
