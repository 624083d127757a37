import { describe, expect, it } from "vitest"
import { digamma, inverseTrigamma, tetragamma, trigamma } from "../../framework/metrics/special-functions.ts"
import { expectGolden, readGolden } from "./golden.ts"

const golden = readGolden("special-functions.json")

describe("special functions match scipy.special", () => {
  golden.x.forEach((x: number, k: number) => {
    it(`at x = ${x}`, () => {
      expectGolden(digamma(x), golden.digamma[k], `digamma(${x})`)
      expectGolden(trigamma(x), golden.trigamma[k], `trigamma(${x})`)
      expectGolden(tetragamma(x), golden.tetragamma[k], `tetragamma(${x})`)
    })
  })

  it("digamma(-0) is +Infinity, as scipy has it", () => {
    expect(digamma(-0)).toBe(Infinity)
  })

  it("inverseTrigamma undoes trigamma from tiny to huge arguments", () => {
    for (const x of [1e-6, 0.01, 0.5, 1, 3.3, 250, 1e5, 1e9]) {
      expectGolden(inverseTrigamma(trigamma(x)), x, `inverseTrigamma(trigamma(${x}))`)
    }
    expect(inverseTrigamma(0)).toBe(Infinity)
    expect(inverseTrigamma(-1)).toBeNaN()
  })
})
