/**
 * A kernel input's shape as a tuple: tfjs hands shapes to kernels as plain arrays, whose rank the op
 * checked before; a kernel reached another way (or a wrong rank) gets this error, not NaN sizes.
 */
export const shape4 = (kernel: string, input: string, shape: ReadonlyArray<number>): readonly [number, number, number, number] => {
  const [a, b, c, d] = shape
  if (shape.length !== 4 || a === undefined || b === undefined || c === undefined || d === undefined) throw rankError(kernel, input, shape, "4")
  return [a, b, c, d]
}

/** The sizes of the last two axes (the matrix of a batched matrix), checked as `shape4` is. */
export const lastTwo = (kernel: string, input: string, shape: ReadonlyArray<number>): readonly [number, number] => {
  const rows = shape[shape.length - 2]
  const cols = shape[shape.length - 1]
  if (rows === undefined || cols === undefined) throw rankError(kernel, input, shape, "at least 2")
  return [rows, cols]
}

const rankError = (kernel: string, input: string, shape: ReadonlyArray<number>, rank: string): Error =>
  new Error(`${kernel}: input "${input}" has shape [${shape.join(", ")}], not of rank ${rank}`)
