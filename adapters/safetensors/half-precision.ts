/** float16 / bfloat16 <-> float32 conversions (IEEE 754 binary16; bfloat16 = the top half of a float32). */

const f16Table = (): Float32Array => {
  const table = new Float32Array(65536)
  const bits = new Uint32Array(table.buffer)
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16
    const exponent = (h >> 10) & 0x1f
    const mantissa = h & 0x3ff
    if (exponent === 0) {
      // Zero or subnormal: mantissa · 2^-24, exactly representable in float32.
      table[h] = (sign ? -1 : 1) * mantissa * 2 ** -24
    } else if (exponent === 31) {
      bits[h] = sign | 0x7f800000 | (mantissa << 13)
    } else {
      bits[h] = sign | ((exponent + 112) << 23) | (mantissa << 13)
    }
  }
  return table
}

/** All 65536 float16 values as float32: a lookup is faster than decoding each element. */
const F16_TO_F32 = f16Table()

export const f16ToF32 = (source: Uint16Array): Float32Array => {
  const out = new Float32Array(source.length)
  for (let i = 0; i < source.length; i++) out[i] = F16_TO_F32[source[i]!]!
  return out
}

export const bf16ToF32 = (source: Uint16Array): Float32Array => {
  const bits = new Uint32Array(source.length)
  for (let i = 0; i < source.length; i++) bits[i] = source[i]! << 16
  return new Float32Array(bits.buffer)
}

/** Rounds to the nearest float16 (ties to even), overflowing to infinity, keeping NaN a NaN. */
export const f32ToF16 = (source: Float32Array): Uint16Array => {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length)
  const out = new Uint16Array(source.length)
  for (let i = 0; i < source.length; i++) {
    const x = bits[i]!
    const sign = (x >>> 16) & 0x8000
    const exponent = (x >>> 23) & 0xff
    const mantissa = x & 0x7fffff
    if (exponent === 0xff) {
      out[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0)
      continue
    }
    const e = exponent - 127 + 15
    if (e >= 31) {
      out[i] = sign | 0x7c00
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign
        continue
      }
      // Subnormal result: shift the mantissa (with its implicit 1) and round to nearest even.
      const m = mantissa | 0x800000
      const shift = 14 - e
      const half = 1 << (shift - 1)
      const rest = m & ((1 << shift) - 1)
      let value = m >>> shift
      if (rest > half || (rest === half && (value & 1))) value++
      out[i] = sign | value
    } else {
      let value = (e << 10) | (mantissa >>> 13)
      const rest = mantissa & 0x1fff
      if (rest > 0x1000 || (rest === 0x1000 && (value & 1))) value++
      out[i] = sign | value
    }
  }
  return out
}

/** Rounds to the nearest bfloat16 (ties to even), keeping NaN a NaN. */
export const f32ToBf16 = (source: Float32Array): Uint16Array => {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length)
  const out = new Uint16Array(source.length)
  for (let i = 0; i < source.length; i++) {
    const x = bits[i]!
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40
    } else {
      out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff
    }
  }
  return out
}
