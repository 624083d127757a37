import { Effect } from "effect"
import { assert, describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { GridDeclarationError } from "../../framework/declaration/grid.ts"
import { frozen, full, grid, lora, study } from "../../framework/index.ts"
import { validExperiment } from "../support/declarations.ts"

const base = validExperiment()

/** The issues of the GridDeclarationError `f` throws. */
const issuesOf = (f: () => unknown): ReadonlyArray<string> => {
  try {
    f()
  } catch (error) {
    if (error instanceof GridDeclarationError) return error.issues
    throw error
  }
  throw new Error("the grid was accepted")
}

describe("grid: a study's experiments as every combination of some declaration fields", () => {
  it("expands the cartesian product, the first axis varying slowest, each value set at its dot path", () => {
    const experiments = grid(base, {
      "components.unet": [full({ lr: 1e-4 }), lora({ rank: 4, lr: 1e-3 })],
      "train.steps": [10, 20, 30]
    })
    expect(experiments).toHaveLength(6)
    expect(experiments.map((e) => [e.components.unet!._tag, e.train!.steps])).toEqual([
      ["full", 10],
      ["full", 20],
      ["full", 30],
      ["lora", 10],
      ["lora", 20],
      ["lora", 30]
    ])
    // Fields the axes do not touch are the base's, nested siblings included.
    for (const e of experiments) {
      expect(e.train!.seed).toBe(base.train!.seed)
      expect(e.components.vae).toEqual(base.components.vae)
      expect(e.data).toEqual(base.data)
    }
    // The base itself is left as it was.
    expect(base.components.unet).toEqual(full({ lr: 1e-4 }))
    expect(base.train!.steps).toBe(12)
  })

  it("names each combination after the base, the axis's last segment and the value: lora by its rank", () => {
    const names = grid(base, { "components.unet": [full({ lr: 1e-4 }), lora({ rank: 4, lr: 1e-3 }), frozen()], "train.seed": [1, 2] }).map((e) => e.name)
    expect(names).toEqual([
      "tiny-unet-full-seed-1",
      "tiny-unet-full-seed-2",
      "tiny-unet-lora-r4-seed-1",
      "tiny-unet-lora-r4-seed-2",
      "tiny-unet-frozen-seed-1",
      "tiny-unet-frozen-seed-2"
    ])
    expect(grid({ ...base, name: "My Base" }, { "generate.guidanceScale": [7.5] })[0]!.name).toBe("my-base-guidancescale-7.5")
  })

  it("options.name names each combination from its choices", () => {
    const experiments = grid(base, { "train.steps": [10, 20] }, {
      name: ([steps]) => {
        assert.isDefined(steps)
        return `short-${String(steps.value)}`
      }
    })
    expect(experiments.map((e) => e.name)).toEqual(["short-10", "short-20"])
  })

  it("creates the objects an axis path goes through when the base has none", () => {
    const { train: _train, ...untrained } = base
    const [experiment] = grid(untrained, { "train.steps": [5] })
    assert.isDefined(experiment)
    expect(experiment.train).toEqual({ steps: 5 })
  })

  it("expands into experiments a study accepts; the declaration checks the values themselves", async () => {
    const experiments = grid(base, { "components.unet": [full({ lr: 1e-4 }), lora({ rank: 2, lr: 1e-3 })] })
    const decoded = await Effect.runPromise(decodeDeclaration(study({ name: "sweep", experiments })))
    expect(decoded.kind === "study" && decoded.experiments.map((e) => e.name)).toEqual(["tiny-unet-full", "tiny-unet-lora-r2"])
    const bad = await Effect.runPromise(Effect.either(decodeDeclaration(study({ name: "sweep", experiments: grid(base, { "train.steps": [0] }) }))))
    expect(bad._tag === "Left" && bad.left.lines).toContainEqual(expect.stringMatching(/^experiments\.0\.train\.steps: must be an integer ≥ 1 \(got 0\)$/))
  })

  it("refuses what it cannot expand, naming every axis and its rule", () => {
    expect(issuesOf(() => grid(base, {}))).toEqual(["needs at least one axis: { \"dot.path\": [values…] }"])
    expect(issuesOf(() => grid(base, { "components..unet": [frozen()], "train.steps": [], name: ["x"], "train.steps.x": [1] }))).toEqual([
      "axis \"components..unet\": must be a dot path into the experiment, such as \"components.unet\"",
      "axis \"train.steps\": has no values",
      "axis \"name\": the grid names each combination itself (pass options.name to choose the names)",
      "axis \"train.steps.x\": train.steps is 12 in the base, not an object to set x in"
    ])
    expect(issuesOf(() => grid(base, { "train.steps": [10, 20] }, { name: () => "same" }))).toEqual([
      "two combinations are both named \"same\": pass options.name to name each combination"
    ])
    // Values that name alike (two LoRAs of one rank) need their own names.
    expect(issuesOf(() => grid(base, { "components.unet": [lora({ rank: 4, lr: 1e-3 }), lora({ rank: 4, lr: 1e-4 })] }))).toEqual([
      "two combinations are both named \"tiny-unet-lora-r4\": pass options.name to name each combination"
    ])
  })
})
