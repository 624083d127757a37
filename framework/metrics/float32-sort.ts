/**
 * Ascending sort of finite float32 values by LSD radix sort on their bit patterns (three passes
 * of 11 bits). Pooled sample sets reach tens of millions of values, where a comparison sort is
 * several times slower. Returns a new array; the input is left alone.
 *
 * Key: the IEEE bits with the sign bit flipped for non-negative numbers and all bits flipped
 * for negative ones, which orders keys as the numbers (−0 sorts just before +0).
 */
const RADIX_BITS = 11
const BUCKETS = 1 << RADIX_BITS
const PASSES = 3

export const sortFloat32 = (values: Float32Array): Float32Array => {
  const n = values.length
  let keys = new Uint32Array(n)
  const bits = new Uint32Array(values.buffer, values.byteOffset, n)
  const counts = new Uint32Array(BUCKETS * PASSES)
  for (let i = 0; i < n; i++) {
    const u = bits[i]!
    const key = (u & 0x80000000) !== 0 ? ~u >>> 0 : (u | 0x80000000) >>> 0
    keys[i] = key
    counts[key & 0x7ff]!++
    counts[BUCKETS + ((key >>> 11) & 0x7ff)]!++
    counts[2 * BUCKETS + (key >>> 22)]!++
  }
  let spare = new Uint32Array(n)
  const offsets = new Uint32Array(BUCKETS)
  for (let pass = 0; pass < PASSES; pass++) {
    const base = pass * BUCKETS
    const shift = pass * RADIX_BITS
    // A digit shared by every key leaves the order unchanged: skip the pass.
    let skip = false
    let total = 0
    for (let b = 0; b < BUCKETS; b++) {
      const c = counts[base + b]!
      if (c === n) skip = true
      offsets[b] = total
      total += c
    }
    if (skip) continue
    for (let i = 0; i < n; i++) {
      const key = keys[i]!
      spare[offsets[(key >>> shift) & 0x7ff]!++] = key
    }
    const swap = keys
    keys = spare
    spare = swap
  }
  const out = new Float32Array(n)
  const outBits = new Uint32Array(out.buffer)
  for (let i = 0; i < n; i++) {
    const key = keys[i]!
    outBits[i] = (key & 0x80000000) !== 0 ? (key & 0x7fffffff) >>> 0 : ~key >>> 0
  }
  return out
}
