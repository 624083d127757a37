/**
 * Fewer points for a long series (a 20 000-step loss curve) without losing its envelope: per
 * bucket of consecutive points, the first, lowest, highest and last, in their original order.
 */
export const decimate = (points: ReadonlyArray<readonly [number, number]>, buckets: number): ReadonlyArray<readonly [number, number]> => {
  if (points.length <= buckets * 4) return points
  const out: Array<readonly [number, number]> = []
  const size = points.length / buckets
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size)
    const end = Math.min(points.length, Math.floor((b + 1) * size))
    let low = start
    let high = start
    for (let i = start; i < end; i++) {
      if (points[i]![1] < points[low]![1]) low = i
      if (points[i]![1] > points[high]![1]) high = i
    }
    for (const i of [...new Set([start, low, high, end - 1])].sort((a, b) => a - b)) out.push(points[i]!)
  }
  return out
}
