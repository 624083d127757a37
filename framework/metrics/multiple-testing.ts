/**
 * Holm's step-down adjustment (Holm 1979), as statsmodels' multipletests(method="holm") computes
 * it: sort the m p-values, multiply the k-th smallest by m − k + 1, carry the running maximum up,
 * cap at 1. A hypothesis is rejected at family-wise level α when its adjusted p-value is ≤ α;
 * the guarantee holds under any dependence between the tests. NaN p-values (tests that could not
 * be made) take no part and stay NaN.
 */
export const holmAdjusted = (pValues: ReadonlyArray<number>): ReadonlyArray<number> => {
  const present = pValues.flatMap((p, i) => (Number.isNaN(p) ? [] : [{ p, i }])).sort((a, b) => a.p - b.p || a.i - b.i)
  const m = present.length
  const adjusted = pValues.map(() => NaN)
  let running = 0
  present.forEach(({ p, i }, k) => {
    running = Math.max(running, Math.min(1, (m - k) * p))
    adjusted[i] = running
  })
  return adjusted
}
