import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import type { StepResources } from "../../framework/declaration/resources.ts"
import { study } from "../../framework/index.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { sharedStepConflicts, stepResources } from "../../framework/plan/step-resources.ts"
import { validExperiment } from "../support/declarations.ts"

/**
 * Two experiments sharing one training (same content key), or another step, that ask for it differently: refused,
 * naming both, the field and the two values; `time` and `memory`, limits that change no number, take the largest declared.
 * Pure plan compilation, < 1 s.
 */

const sharing = (one: Partial<StepResources>, other: Partial<StepResources>, studyResources: Partial<StepResources> = {}) =>
  Effect.runSync(decodeDeclaration(study({
    name: "s",
    resources: { train: { ...studyResources } },
    experiments: [
      validExperiment({ name: "one", resources: { train: one }, train: { steps: 4, seed: 1, batchSize: 4 } }),
      // Differs only in what it samples: the training is the same step.
      validExperiment({
        name: "other",
        resources: { train: other },
        train: { steps: 4, seed: 1, batchSize: 4 },
        generate: { prompts: ["SAR image of a harbour"], seeds: [0], steps: 4 }
      })
    ]
  })))

const planned = (declaration: ReturnType<typeof sharing>, engine: "tfjs" | "torch") => {
  const plan = compilePlan(declaration, new Map(), engine)
  const train = plan.steps.filter((s) => s.kind === "train")
  // The premise: one training, both experiments on it.
  expect(train.map((s) => s.experiments)).toEqual([["one", "other"]])
  return { conflicts: sharedStepConflicts(declaration, plan), resources: stepResources(declaration, train[0]!) }
}

const refusal = (field: string, values: string, what = "value") =>
  `one/train: one training shared by one and other, which declare different resources.train.${field} (${values}); declare the same ${what} for all of them`

describe("a training several experiments share", () => {
  it("is refused when they declare its process layout differently on torch: sharding, nodes, processes", () => {
    expect(planned(sharing({ processes: 2, sharding: "fsdp" }, { processes: 2 }), "torch").conflicts).toEqual([
      refusal("sharding", "one fsdp, other none")
    ])
    expect(planned(sharing({ nodes: 2 }, {}), "torch").conflicts).toEqual([refusal("nodes", "one 2, other 1")])
    expect(planned(sharing({ processes: 2, nodes: 2 }, { processes: 4 }), "torch").conflicts).toEqual([
      refusal("processes", "one 2, other 4", "count"),
      refusal("nodes", "one 2, other 1")
    ])
    // Declared "none" is the default: the same layout.
    expect(planned(sharing({ processes: 2, sharding: "none" }, { processes: 2 }), "torch").conflicts).toEqual([])
  })

  it("is refused when they ask the cluster for different machines, on either engine", () => {
    const machines = sharing(
      { gpus: 2, processes: 1, cpus: 8, partition: "gpu", account: "sar", qos: "long", constraint: "h100" },
      { gpus: 1, cpus: 4, partition: "a100", account: "radar", qos: "short", constraint: "a100" }
    )
    const expected = [
      refusal("gpus", "one 2, other 1"),
      refusal("cpus", "one 8, other 4"),
      refusal("partition", "one gpu, other a100"),
      refusal("account", "one sar, other radar"),
      refusal("qos", "one long, other short"),
      refusal("constraint", "one h100, other a100")
    ]
    expect(planned(machines, "tfjs").conflicts).toEqual(expected)
    expect(planned(machines, "torch").conflicts).toEqual(expected)
  })

  it("is refused when they assume different GPUs for the plan's memory and time checks", () => {
    expect(
      planned(
        sharing({ gpuMemory: "80G", gpu: "H100", gpuPeakTflops: 900, utilisation: 0.4 }, {
          gpuMemory: "40G",
          gpu: "A100",
          gpuPeakTflops: 300,
          utilisation: 0.3
        }),
        "torch"
      ).conflicts
    )
      .toEqual([
        refusal("gpuMemory", "one 80G, other 40G"),
        refusal("gpu", "one H100, other A100"),
        refusal("gpuPeakTflops", "one 900, other 300"),
        refusal("utilisation", "one 0.4, other 0.3")
      ])
  })

  it("takes a field one of them declares and the other leaves out, with no refusal", () => {
    const { conflicts, resources } = planned(sharing({}, { partition: "gpu", qos: "long", gpuMemory: "80G" }, { gpus: 1 }), "torch")
    expect(conflicts).toEqual([])
    expect(resources).toEqual({ cpus: 1, gpus: 1, partition: "gpu", qos: "long", gpuMemory: "80G" })
  })

  it("takes the largest time and memory declared (limits: the same numbers, and neither experiment's job cut short)", () => {
    const both = planned(sharing({ time: "2-00:00:00", memory: "512G" }, { time: "90", memory: "1T" }), "torch")
    expect(both.conflicts).toEqual([])
    expect(both.resources).toMatchObject({ time: "2-00:00:00", memory: "1T" })
    // In the other order too: not the first experiment's.
    expect(planned(sharing({ time: "90", memory: "1T" }, { time: "4:00:00", memory: "64G" }), "tfjs").resources).toMatchObject({
      time: "4:00:00",
      memory: "1T"
    })
    // An experiment that declares none leaves it to the other; the study's applies to both.
    expect(planned(sharing({}, { time: "30" }, { memory: "16G" }), "torch").resources).toEqual({ cpus: 1, gpus: 0, time: "30", memory: "16G" })
  })

  it("the same for any other step they share: their data, its encodings, the report", () => {
    const declaration = Effect.runSync(decodeDeclaration(study({
      name: "s",
      experiments: [
        validExperiment({ name: "one", resources: { "prepare-data": { partition: "cpu" }, "encode-latents": { time: "30" }, report: { cpus: 2 } } }),
        validExperiment({
          name: "other",
          resources: { "prepare-data": { partition: "big" }, "encode-latents": { time: "1:00:00" } },
          train: { steps: 4, seed: 2 }
        })
      ]
    })))
    const plan = compilePlan(declaration, new Map(), "tfjs")
    expect(sharedStepConflicts(declaration, plan)).toEqual([
      "one/reference: one prepare-data step shared by one and other, which declare different resources.prepare-data.partition (one cpu, other big); " +
      "declare the same value for all of them",
      "one/data: one prepare-data step shared by one and other, which declare different resources.prepare-data.partition (one cpu, other big); " +
      "declare the same value for all of them",
      "report: one report step shared by one and other, which declare different resources.report.cpus (one 2, other 1); declare the same value for all of them"
    ])
    expect(stepResources(declaration, plan.steps.find((s) => s.id === "one/latents")!)).toEqual({ cpus: 1, gpus: 0, time: "1:00:00" })
  })
})
