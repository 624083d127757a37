import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { clipAlignment, cmmd, type Embeddings, frechetDistance, kernelDistance } from "../../framework/metrics/embedding-distances.ts"
import { symmetricEigen, symmetricEigenvalues } from "../../framework/metrics/symmetric-eigen.ts"
import { expectGolden, float32s, goldenNumber, readGolden } from "./golden.ts"

const golden = readGolden("embeddings.json")
const set = (name: string, e: any): Embeddings => ({ name, count: e.count, dim: e.dim, data: float32s(e.data) })
const x = set("real", golden.x)
const y = set("generated", golden.y)

describe("embedding distances match their references", () => {
  it("FID equals pytorch-fid's formula with scipy.linalg.sqrtm", () => {
    expectGolden(Effect.runSync(frechetDistance(x, y)), golden.fid, "fid")
  })
  it("FID of a set with itself is 0 up to rounding", () => {
    expect(Math.abs(Effect.runSync(frechetDistance(x, x)))).toBeLessThan(1e-9)
    expect(Math.abs(goldenNumber(golden.fidSelf))).toBeLessThan(1e-6)
  })
  it("KID is the unbiased polynomial-kernel MMD²", () => {
    expectGolden(Effect.runSync(kernelDistance(x, y)), golden.kid, "kid")
  })
  it("CMMD is the RBF MMD (σ = 10) × 1000 of the CMMD paper's code", () => {
    expectGolden(Effect.runSync(cmmd(set("real", golden.unitX), set("generated", golden.unitY))), golden.cmmd, "cmmd")
  })
  it("FID stays finite and non-negative with fewer embeddings than dimensions (singular covariance)", () => {
    const few = { ...x, count: 3, data: x.data.slice(0, 3 * x.dim) }
    const fid = Effect.runSync(frechetDistance(few, y))
    expect(Number.isFinite(fid)).toBe(true)
    expect(fid).toBeGreaterThan(0)
  })
})

describe("symmetric eigendecomposition", () => {
  const { n, matrix, eigenvalues } = golden.symmetric
  const a = Float64Array.from(matrix as number[])
  it("eigenvalues match numpy.linalg.eigvalsh", () => {
    const values = symmetricEigenvalues(a, n)
    eigenvalues.forEach((e: number, k: number) => expectGolden(values[k]!, e, `λ${k}`))
  })
  it("eigenvectors satisfy A v = λ v and are orthonormal", () => {
    const { values, vectors } = symmetricEigen(a, n)
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < n; i++) {
        let av = 0
        for (let j = 0; j < n; j++) av += a[i * n + j]! * vectors[j * n + k]!
        expect(Math.abs(av - values[k]! * vectors[i * n + k]!)).toBeLessThan(1e-12)
      }
      for (let l = 0; l < n; l++) {
        let dot = 0
        for (let i = 0; i < n; i++) dot += vectors[i * n + k]! * vectors[i * n + l]!
        expect(Math.abs(dot - (k === l ? 1 : 0))).toBeLessThan(1e-12)
      }
    }
  })
  it("1 × 1 and 2 × 2 matrices", () => {
    expect(Array.from(symmetricEigenvalues(Float64Array.of(4), 1))).toEqual([4])
    const two = symmetricEigenvalues(Float64Array.of(2, 1, 1, 2), 2)
    expectGolden(two[0]!, 1, "λ0")
    expectGolden(two[1]!, 3, "λ1")
  })
})

describe("embedding distances refuse bad input, naming it", () => {
  const reason = (effect: Effect.Effect<number, any>) => {
    const result = Effect.runSync(Effect.either(effect))
    if (Either.isRight(result)) throw new Error("expected a failure")
    return `${result.left.input}: ${result.left.reason}`
  }
  it("embedding sizes that differ between the sets", () => {
    const other = { name: "generated", count: 4, dim: 3, data: new Float32Array(12) }
    expect(reason(frechetDistance(x, other))).toBe("real / generated: embedding sizes differ: 6 and 3")
    expect(reason(cmmd(x, other))).toBe("real / generated: embedding sizes differ: 6 and 3")
  })
  it("a single embedding where a covariance is needed", () => {
    const one = { ...x, count: 1, data: x.data.slice(0, x.dim) }
    expect(reason(kernelDistance(one, y))).toBe("real: has 1 embeddings; at least 2 are needed")
  })
  it("NaN in an embedding", () => {
    const bad = { ...y, data: y.data.slice() }
    bad.data[7] = NaN
    expect(reason(frechetDistance(x, bad))).toBe("generated: value NaN of embedding 1 is not a finite number")
  })
})

describe("clipAlignment", () => {
  const pair = (a: number[], b: number[]) =>
    clipAlignment({ name: "images", count: a.length / 2, dim: 2, data: Float32Array.from(a) }, {
      name: "texts",
      count: b.length / 2,
      dim: 2,
      data: Float32Array.from(b)
    })
  it("is 100 · cosine of each image with the text of the same index, whatever the lengths", () => {
    const scores = Effect.runSync(pair([1, 0, 3, 4, 0, 2], [2, 0, 4, -3, 0, -1]))
    expect(Array.from(scores)).toEqual([100, 0, -100])
  })
  it("refuses unpaired sets and zero-length embeddings", () => {
    const reason = (effect: Effect.Effect<Float64Array, any>) => {
      const result = Effect.runSync(Effect.either(effect))
      if (Either.isRight(result)) throw new Error("expected a failure")
      return result.left.message
    }
    expect(reason(pair([1, 0, 0, 1], [1, 0]))).toBe("images / texts: 2 images and 1 texts cannot be paired")
    expect(reason(pair([1, 0, 0, 0], [1, 0, 1, 1]))).toBe("images: embedding 1 has length 0")
  })
})
