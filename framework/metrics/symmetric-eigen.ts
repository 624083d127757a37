/**
 * Eigendecomposition of a real symmetric matrix: Householder reduction to tridiagonal form, then
 * the implicit QL algorithm with Wilkinson-style shifts (Golub & Van Loan §8.3). O(n³), accurate to
 * a few ulps of the largest eigenvalue, which is what a Fréchet distance between covariance
 * matrices needs. Matrices are row-major Float64Array of n × n.
 */

export interface SymmetricEigen {
  /** Eigenvalues, ascending. */
  readonly values: Float64Array
  /** Eigenvectors as columns (row-major n × n): column k belongs to values[k]. */
  readonly vectors: Float64Array
}

/**
 * Reduces `a` (overwritten) to tridiagonal form Qᵀ A Q = T. Returns T's diagonal and
 * sub-diagonal (sub[i] couples i and i + 1), and Q when `withQ`.
 */
const tridiagonalise = (a: Float64Array, n: number, withQ: boolean) => {
  const diagonal = new Float64Array(n)
  const sub = new Float64Array(n)
  const reflectors: Array<Float64Array | undefined> = []
  const v = new Float64Array(n)
  const p = new Float64Array(n)
  for (let k = 0; k < n - 2; k++) {
    // Reflect the column below the diagonal, x = a[k+1.., k], onto a multiple of e1.
    let norm2 = 0
    for (let i = k + 1; i < n; i++) norm2 += a[i * n + k]! * a[i * n + k]!
    const x0 = a[(k + 1) * n + k]!
    if (norm2 === 0 || norm2 === x0 * x0) {
      sub[k] = x0
      reflectors.push(undefined)
      continue
    }
    const alpha = x0 > 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2)
    let vnorm2 = 0
    for (let i = k + 1; i < n; i++) {
      v[i] = a[i * n + k]! - (i === k + 1 ? alpha : 0)
      vnorm2 += v[i]! * v[i]!
    }
    const vnorm = Math.sqrt(vnorm2)
    for (let i = k + 1; i < n; i++) v[i]! /= vnorm
    // A22 ← H A22 H with H = I − 2vvᵀ: p = A22 v, K = vᵀp, q = p − K v, A22 −= 2(v qᵀ + q vᵀ).
    let kappa = 0
    for (let i = k + 1; i < n; i++) {
      let s = 0
      const row = i * n
      for (let j = k + 1; j < n; j++) s += a[row + j]! * v[j]!
      p[i] = s
      kappa += v[i]! * s
    }
    for (let i = k + 1; i < n; i++) p[i]! -= kappa * v[i]!
    for (let i = k + 1; i < n; i++) {
      const row = i * n
      const vi = 2 * v[i]!
      const pi = 2 * p[i]!
      for (let j = k + 1; j < n; j++) a[row + j]! -= vi * p[j]! + pi * v[j]!
    }
    sub[k] = alpha
    reflectors.push(withQ ? v.slice(k + 1) : undefined)
  }
  for (let i = 0; i < n; i++) diagonal[i] = a[i * n + i]!
  if (n >= 2) sub[n - 2] = a[(n - 1) * n + (n - 2)]!
  sub[n - 1] = 0
  if (!withQ) return { diagonal, sub, q: undefined }
  // Q = H0 H1 … : apply the reflectors to the identity from the last one backwards.
  const q = new Float64Array(n * n)
  for (let i = 0; i < n; i++) q[i * n + i] = 1
  const w = new Float64Array(n)
  for (let k = reflectors.length - 1; k >= 0; k--) {
    const r = reflectors[k]
    if (r === undefined) continue
    const o = k + 1
    w.fill(0)
    for (let i = 0; i < r.length; i++) {
      const row = (o + i) * n
      const ri = r[i]!
      for (let j = o; j < n; j++) w[j]! += ri * q[row + j]!
    }
    for (let i = 0; i < r.length; i++) {
      const row = (o + i) * n
      const ri = 2 * r[i]!
      for (let j = o; j < n; j++) q[row + j]! -= ri * w[j]!
    }
  }
  return { diagonal, sub, q }
}

/**
 * Implicit QL iterations on the tridiagonal (d, e); rotations are applied to the rows of `zt`
 * (the transposed eigenvector matrix, so each rotation touches two contiguous rows) when given.
 * Leaves the eigenvalues in d.
 */
const tridiagonalQl = (d: Float64Array, e: Float64Array, n: number, zt: Float64Array | undefined) => {
  for (let l = 0; l < n; l++) {
    for (let iteration = 0;; iteration++) {
      let m = l
      for (; m < n - 1; m++) {
        const scale = Math.abs(d[m]!) + Math.abs(d[m + 1]!)
        if (Math.abs(e[m]!) <= Number.EPSILON * scale) break
      }
      if (m === l) break
      if (iteration === 60 * n) throw new Error("symmetric eigendecomposition did not converge")
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!)
      let r = Math.hypot(g, 1)
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r))
      let s = 1
      let c = 1
      let p = 0
      let i = m - 1
      for (; i >= l; i--) {
        const f = s * e[i]!
        const b = c * e[i]!
        r = Math.hypot(f, g)
        e[i + 1] = r
        if (r === 0) {
          d[i + 1]! -= p
          e[m] = 0
          break
        }
        s = f / r
        c = g / r
        g = d[i + 1]! - p
        r = (d[i]! - g) * s + 2 * c * b
        p = s * r
        d[i + 1] = g + p
        g = c * r - b
        if (zt !== undefined) {
          const rowI = i * n
          const rowNext = rowI + n
          for (let k = 0; k < n; k++) {
            const zf = zt[rowNext + k]!
            const zi = zt[rowI + k]!
            zt[rowNext + k] = s * zi + c * zf
            zt[rowI + k] = c * zi - s * zf
          }
        }
      }
      if (r === 0 && i >= l) continue
      d[l]! -= p
      e[l] = g
      e[m] = 0
    }
  }
}

/** Eigenvalues (ascending) and eigenvectors of the symmetric matrix `matrix` (left unchanged). */
export const symmetricEigen = (matrix: Float64Array, n: number): SymmetricEigen => {
  const { diagonal, sub, q } = tridiagonalise(matrix.slice(), n, true)
  const qt = new Float64Array(n * n)
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) qt[j * n + i] = q![i * n + j]!
  tridiagonalQl(diagonal, sub, n, qt)
  const order = Array.from({ length: n }, (_, k) => k).sort((x, y) => diagonal[x]! - diagonal[y]!)
  const values = new Float64Array(n)
  const vectors = new Float64Array(n * n)
  order.forEach((from, to) => {
    values[to] = diagonal[from]!
    for (let row = 0; row < n; row++) vectors[row * n + to] = qt[from * n + row]!
  })
  return { values, vectors }
}

/** Eigenvalues only (ascending); cheaper, as no rotation is accumulated. */
export const symmetricEigenvalues = (matrix: Float64Array, n: number): Float64Array => {
  const { diagonal, sub } = tridiagonalise(matrix.slice(), n, false)
  tridiagonalQl(diagonal, sub, n, undefined)
  return diagonal.sort()
}
