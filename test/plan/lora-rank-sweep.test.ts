import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import type { Plan } from "../../framework/plan/step.ts"
import { repoRoot } from "../support/run-process.ts"

const load = (name: string) => Effect.runPromise(loadDeclaration(`${repoRoot}/experiments/paper/${name}.ts`).pipe(Effect.provide(NodeContext.layer)))
const stepsOf = (plan: Plan, kind: string) => plan.steps.filter((s) => s.kind === kind)

describe("the paper's LoRA-rank sweep of the UNet (experiments/paper/lora-rank-sweep.ts, a grid)", () => {
  it("expands to one lora-unet per rank, alpha = rank, the rest of lora-unet unchanged", async () => {
    const { declaration } = await load("lora-rank-sweep")
    const { declaration: loraUnet } = await load("lora-unet")
    if (declaration.kind !== "study" || loraUnet.kind !== "experiment") throw new Error("expected a study and an experiment")
    expect(declaration.experiments.map((e) => e.name)).toEqual(["lora-unet-r4", "lora-unet-r8", "lora-unet-r16", "lora-unet-r32", "lora-unet-r64"])
    for (const [i, rank] of [4, 8, 16, 32, 64].entries()) {
      const experiment = declaration.experiments[i]
      if (experiment === undefined) throw new Error(`no experiment ${i}`)
      const { components, data, description: _description, name: _name, train, ...rest } = experiment
      expect(components.unet).toMatchObject({ _tag: "lora", rank, alpha: rank, lr: 1e-4 })
      expect(components.vae).toEqual(loraUnet.components.vae)
      expect(components.textEncoders).toEqual(loraUnet.components.textEncoders)
      const { components: _c, data: loraData, description: _d, name: _n, train: loraTrain, ...loraRest } = loraUnet
      expect({ data, train, rest }).toEqual({ data: loraData, train: loraTrain, rest: loraRest })
    }
  })

  it("plans five trainings over one data preparation and one set of frozen-encoder caches", async () => {
    const plan = compilePlan((await load("lora-rank-sweep")).declaration)
    const experiments = ["lora-unet-r4", "lora-unet-r8", "lora-unet-r16", "lora-unet-r32", "lora-unet-r64"]
    expect(stepsOf(plan, "prepare-data").map((s) => s.experiments)).toEqual([experiments, experiments])
    expect(stepsOf(plan, "encode-latents").map((s) => s.experiments)).toEqual([experiments])
    expect(stepsOf(plan, "encode-text").map((s) => s.experiments)).toEqual([experiments])
    const trains = stepsOf(plan, "train")
    expect(trains.map((s) => s.experiments)).toEqual(experiments.map((e) => [e]))
    expect(new Set(trains.map((s) => s.key)).size).toBe(5)
    expect(stepsOf(plan, "report")).toHaveLength(1)
  })

  it("its rank-32 steps are the paper study's lora-unet steps: run after it, they come from the cache", async () => {
    const sweep = compilePlan((await load("lora-rank-sweep")).declaration)
    const paper = compilePlan((await load("study")).declaration)
    const key = (plan: Plan, id: string) => plan.steps.find((s) => s.id === id)!.key
    for (const kind of ["train", "generate", "evaluate"]) {
      expect(key(sweep, `lora-unet-r32/${kind}`), kind).toBe(key(paper, `lora-unet/${kind}`))
      expect(key(sweep, `lora-unet-r16/${kind}`), kind).not.toBe(key(paper, `lora-unet/${kind}`))
    }
  })
})
