import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { trainStepOf } from "../../framework/cli/trained-plan.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { declaredFolders } from "../../framework/plan/declared-folders.ts"
import { stepResources } from "../../framework/plan/step-resources.ts"
import type { Plan } from "../../framework/plan/step.ts"
import { replicateSeed } from "../../framework/declaration/replicates.ts"
import { controlNet, frozen, full, imageFolder, learnedToken, lora, study, synthetic } from "../../framework/index.ts"
import { tinySd1, validExperiment } from "../support/declarations.ts"
import { repoRoot } from "../support/run-process.ts"

const planOf = async (input: unknown): Promise<Plan> => compilePlan(await Effect.runPromise(decodeDeclaration(input)))
const kinds = (plan: Plan, experiment: string) => plan.steps.filter((s) => s.experiments.includes(experiment)).map((s) => s.kind)
const step = (plan: Plan, id: string) => {
  const found = plan.steps.find((s) => s.id === id)
  if (found === undefined) throw new Error(`no step ${id} in ${plan.steps.map((s) => s.id).join(", ")}`)
  return found
}

describe("plan shapes", () => {
  it("a frozen VAE makes the training read cached latents", async () => {
    const plan = await planOf(validExperiment())
    expect(kinds(plan, "tiny")).toEqual(["prepare-data", "prepare-data", "encode-latents", "encode-text", "train", "generate", "evaluate"])
    expect(step(plan, "tiny/train").inputs).toEqual([
      { role: "data", step: "tiny/data" },
      { role: "latents", step: "tiny/latents" },
      { role: "text", step: "tiny/text" }
    ])
  })

  it("a held-out validation dataset is prepared and encoded like the training data, in steps of its own the train step reads", async () => {
    const heldOut = synthetic({ n: 2, size: 32, seed: 5 })
    const plan = await planOf(validExperiment({ train: { steps: 12, checkpointEvery: 3, seed: 7, validationLoss: { data: heldOut, every: 3 } } }))
    expect(step(plan, "tiny/train").inputs).toEqual([
      { role: "data", step: "tiny/data" },
      { role: "latents", step: "tiny/latents" },
      { role: "text", step: "tiny/text" },
      { role: "validation-data", step: "tiny/validation-data" },
      { role: "validation-latents", step: "tiny/validation-latents" },
      { role: "validation-text", step: "tiny/validation-text" }
    ])
    expect(step(plan, "tiny/validation-data").config).toEqual({ dataset: heldOut })
    expect(step(plan, "tiny/validation-latents").inputs.find((i) => i.role === "data")).toEqual({ role: "data", step: "tiny/validation-data" })
    // Its own keys: the held-out set's caches are not the training data's.
    expect(step(plan, "tiny/validation-latents").key).not.toBe(step(plan, "tiny/latents").key)
    // A fraction holds out of the training data's own steps: nothing more to prepare.
    const fraction = await planOf(validExperiment({ train: { steps: 12, checkpointEvery: 3, seed: 7, validationLoss: { fraction: 0.25 } } }))
    expect(fraction.steps.map((s) => s.id)).toEqual((await planOf(validExperiment())).steps.map((s) => s.id))
  })

  it("a conditioned experiment's held-out dataset is prepared with the training data's conditioning images", async () => {
    const heldOut = synthetic({ n: 2, size: 32, seed: 5 })
    const plan = await planOf(validExperiment({
      conditioning: controlNet({ input: "label-map", from: "conditioning_file_name", treatment: full({ lr: 1e-4 }) }),
      generate: { conditions: synthetic({ n: 2, size: 32, seed: 6 }), seeds: [0], steps: 4 },
      train: { steps: 12, checkpointEvery: 3, seed: 7, validationLoss: { data: heldOut } }
    }))
    const { dataset: _data, ...conditioned } = step(plan, "tiny/data").config as Record<string, unknown>
    expect(conditioned).toHaveProperty("conditioning")
    expect(step(plan, "tiny/validation-data").config).toEqual({ dataset: heldOut, ...conditioned })
  })

  it("a held-out image folder is fingerprinted as the declaration field that names it", async () => {
    const held = imageFolder(`${repoRoot}/test/fixtures/data`, { unit: "amplitude", resolution: { size: 32 } })
    const plan = await planOf(validExperiment({ train: { steps: 12, checkpointEvery: 3, seed: 7, validationLoss: { data: held } } }))
    expect(declaredFolders(step(plan, "tiny/validation-data")).map((f) => f.field)).toEqual(["train.validationLoss.data.path"])
  })

  it("LoRA on the text encoders means no encode-text step", async () => {
    const plan = await planOf(validExperiment({ components: { unet: frozen(), textEncoders: lora({ rank: 4, lr: 1e-4 }) } }))
    expect(kinds(plan, "tiny")).not.toContain("encode-text")
    expect(kinds(plan, "tiny")).toContain("encode-latents")
  })

  it("a learned token means no encode-text step even with frozen encoders", async () => {
    const plan = await planOf(validExperiment({
      components: { unet: frozen(), textEncoders: frozen(), token: learnedToken({ token: "<SAR>", init: "radar", lr: 1e-3 }) }
    }))
    expect(kinds(plan, "tiny")).not.toContain("encode-text")
  })

  it("a trained VAE means neither encode step", async () => {
    const plan = await planOf(validExperiment({ components: { unet: frozen(), vae: full({ lr: 1e-5 }) } }))
    expect(kinds(plan, "tiny")).toEqual(["prepare-data", "prepare-data", "train", "generate", "evaluate"])
  })

  it("a baseline samples the base: no data preparation for training, no training", async () => {
    const plan = await planOf(validExperiment({ baseline: true, components: { unet: frozen() }, train: undefined }))
    expect(kinds(plan, "tiny")).toEqual(["prepare-data", "generate", "evaluate"])
    expect(step(plan, "tiny/generate").inputs).toEqual([])
  })

  it("the paper study shares its data preparation and frozen-encoder caches", async () => {
    const { declaration } = await Effect.runPromise(loadDeclaration(`${repoRoot}/experiments/paper/study.ts`).pipe(Effect.provide(NodeContext.layer)))
    const plan = compilePlan(declaration)
    const byKind = (kind: string) => plan.steps.filter((s) => s.kind === kind)
    // 7 strategies: the hybrid's captions insert <SAR>, so its training data is prepared apart.
    expect(byKind("prepare-data").map((s) => [s.id, s.experiments.length])).toEqual([
      ["full-unet/reference", 7],
      ["full-unet/data", 6],
      ["hybrid/data", 1]
    ])
    // Latents once for the 4 frozen-VAE strategies on the plain captions, once for the hybrid's data.
    expect(byKind("encode-latents").map((s) => s.experiments)).toEqual([
      ["full-unet", "lora-unet", "text-encoders-lora", "text-encoders-full"],
      ["hybrid"]
    ])
    // Text embeddings only where every encoder is frozen, no token is learned and the VAE is frozen.
    expect(byKind("encode-text").map((s) => s.experiments)).toEqual([["full-unet", "lora-unet"]])
    expect(byKind("train")).toHaveLength(7)
    expect(byKind("report")).toHaveLength(1)
    expect(step(plan, "report").inputs.filter((i) => i.role.startsWith("evaluation:")).map((i) => i.step)).toEqual(
      ["full-unet", "lora-unet", "text-encoders-lora", "text-encoders-full", "vae-full", "vae-lora", "hybrid"].map((e) => `${e}/evaluate`)
    )
    expect(new Set(plan.steps.map((s) => s.key)).size).toBe(plan.steps.length)
  })

  it("content keys follow exactly the fields a step reads", async () => {
    const a = await planOf(validExperiment())
    // Generation settings do not touch training or data preparation…
    const b = await planOf(validExperiment({ generate: { prompts: ["SAR image of a field"], seeds: [0], steps: 8 } }))
    for (const id of ["tiny/data", "tiny/reference", "tiny/latents", "tiny/text", "tiny/train"]) {
      expect(step(b, id).key).toBe(step(a, id).key)
    }
    expect(step(b, "tiny/generate").key).not.toBe(step(a, "tiny/generate").key)
    expect(step(b, "tiny/evaluate").key).not.toBe(step(a, "tiny/evaluate").key)
    // …a training change moves training and everything after it, not the data.
    const c = await planOf(validExperiment({ train: { steps: 13, checkpointEvery: 3, seed: 7 } }))
    expect(step(c, "tiny/data").key).toBe(step(a, "tiny/data").key)
    expect(step(c, "tiny/train").key).not.toBe(step(a, "tiny/train").key)
    expect(step(c, "tiny/generate").key).not.toBe(step(a, "tiny/generate").key)
    // Writing a default explicitly changes nothing.
    const d = await planOf(validExperiment({ components: { unet: full({ lr: 1e-4, weightDecay: 0 }), vae: frozen(), textEncoders: frozen() } }))
    expect(d.steps.map((s) => s.key)).toEqual(a.steps.map((s) => s.key))
  })

  it("stages: a scratch base is initialised once, a trained base is the merged earlier stage", async () => {
    const plan = await planOf(study({
      name: "pretrain",
      experiments: [
        validExperiment({
          name: "vae",
          base: { _tag: "scratch", architecture: "architecture", family: "sd15", seed: 3 },
          components: { unet: frozen(), vae: full({ lr: 1e-4 }) }
        }),
        validExperiment({ name: "unet", base: { _tag: "trained", experiment: "vae", family: "sd15" } })
      ]
    }))
    expect(step(plan, "vae/base").kind).toBe("init-model")
    expect(step(plan, "vae/train").inputs).toEqual([{ role: "data", step: "vae/data" }, { role: "base", step: "vae/base" }])
    const merged = step(plan, "vae/merged")
    expect(merged.kind).toBe("merge-model")
    expect(merged.inputs).toEqual([{ role: "model", step: "vae/train" }, { role: "base", step: "vae/base" }])
    // Every step of the second stage that reads the base reads the merged pipeline.
    for (const id of ["unet/latents", "unet/text", "unet/train", "unet/generate"]) {
      expect(step(plan, id).inputs).toContainEqual({ role: "base", step: "vae/merged" })
    }
    // The stages share their (identical) training data.
    expect(step(plan, "vae/data").experiments).toEqual(["vae", "unet"])
  })

  it("a CLIP model plans as data preparation then contrastive training", async () => {
    const plan = await planOf({
      kind: "clip",
      name: "sar-clip",
      architecture: "clip-architecture",
      data: synthetic({ n: 16, size: 32, seed: 5 }),
      train: { steps: 10 }
    })
    expect(plan.steps.map((s) => [s.id, s.kind])).toEqual([["sar-clip/data", "prepare-data"], ["sar-clip/train", "train-clip"]])
    expect(step(plan, "sar-clip/train").config).toMatchObject({ architecture: "clip-architecture", seed: 0, train: { steps: 10, batchSize: 32 } })
  })

  it("a CLIP model on a list of datasets prepares each and trains on all of them, in order; a list of one plans as the dataset itself", async () => {
    const sar = synthetic({ n: 16, size: 32, seed: 5 })
    const optical = synthetic({ modality: "optical", colour: "grey", n: 16, size: 32, seed: 6 })
    const clip = (data: unknown) => planOf({ kind: "clip", name: "scene-clip", architecture: "clip-architecture", data, train: { steps: 10 } })
    const both = await clip([sar, optical])
    expect(both.steps.map((s) => [s.id, s.kind])).toEqual([
      ["scene-clip/data-1", "prepare-data"],
      ["scene-clip/data-2", "prepare-data"],
      ["scene-clip/train", "train-clip"]
    ])
    expect(step(both, "scene-clip/train").inputs).toEqual([{ role: "data", step: "scene-clip/data-1" }, { role: "data", step: "scene-clip/data-2" }])
    expect(step(both, "scene-clip/data-2").config).toMatchObject({ dataset: { modality: "optical", colour: "grey" } })
    const one = await clip(sar)
    expect((await clip([sar])).steps).toEqual(one.steps)
    expect(step(both, "scene-clip/train").key).not.toBe(step(one, "scene-clip/train").key)
  })

  it("a prompt-following judge is a declared folder of the evaluate step, whose key alone it changes", async () => {
    const alignment = { clip: "./sar-clip" }
    const plain = await planOf(validExperiment({ evaluate: { reference: synthetic({ n: 4, size: 32, seed: 99 }), alignment } }))
    const judged = await planOf(validExperiment({
      evaluate: { reference: synthetic({ n: 4, size: 32, seed: 99 }), alignment: { ...alignment, promptFollowing: { clip: "./scene-clip" } } }
    }))
    expect(declaredFolders(step(plain, "tiny/evaluate")).map((f) => [f.field, f.path])).toEqual([["evaluate.alignment.clip", "./sar-clip"]])
    expect(declaredFolders(step(judged, "tiny/evaluate")).map((f) => [f.field, f.path])).toEqual([
      ["evaluate.alignment.clip", "./sar-clip"],
      ["evaluate.alignment.promptFollowing.clip", "./scene-clip"]
    ])
    expect(step(judged, "tiny/evaluate").key).not.toBe(step(plain, "tiny/evaluate").key)
    expect(step(judged, "tiny/generate").key).toBe(step(plain, "tiny/generate").key)
  })

  it("identical experiments in a study share every step but the report", async () => {
    const plan = await planOf(study({ name: "twins", experiments: [validExperiment({ name: "a" }), validExperiment({ name: "b" })] }))
    expect(plan.steps.filter((s) => s.kind === "train")).toHaveLength(1)
    expect(step(plan, "a/train").experiments).toEqual(["a", "b"])
    expect(step(plan, "report").inputs).toEqual([
      { role: "evaluation:a", step: "a/evaluate" },
      { role: "samples:a", step: "a/generate" },
      { role: "training:a", step: "a/train" },
      { role: "evaluation:b", step: "a/evaluate" },
      { role: "samples:b", step: "a/generate" },
      { role: "training:b", step: "a/train" }
    ])
  })
})

describe("training replicates", () => {
  const replicated = (overrides: Record<string, unknown> = {}) =>
    study({
      name: "replicated",
      replicates: 3,
      compare: [["tiny", "lora"]],
      experiments: [
        validExperiment(),
        validExperiment({ name: "lora", components: { unet: lora({ rank: 2, lr: 1e-3 }), vae: frozen(), textEncoders: frozen() }, replicates: 2 }),
        validExperiment({ name: "baseline", baseline: true, components: { unet: frozen() }, train: undefined })
      ],
      ...overrides
    })

  it("share exactly the steps that do not read the training seed; train, generate and evaluate run once per replicate", async () => {
    const plan = await planOf(replicated())
    const single = await planOf(study({ name: "replicated", experiments: [validExperiment()] }))
    // Per replicate: its training, its samples, their evaluation — and nothing else.
    for (const r of [1, 2, 3]) expect(kinds(plan, `tiny#${r}`), `tiny#${r}`).toEqual(["train", "generate", "evaluate"])
    for (const r of [1, 2]) expect(kinds(plan, `lora#${r}`), `lora#${r}`).toEqual(["train", "generate", "evaluate"])
    expect(plan.steps.some((s) => s.experiments.includes("lora#3"))).toBe(false)
    // Shared by the replicates: data and reference preparation, the frozen encoders' caches.
    expect(kinds(plan, "tiny")).toEqual(["prepare-data", "prepare-data", "encode-latents", "encode-text", "report"])
    expect(step(plan, "tiny/data").experiments).toEqual(["tiny", "lora"])
    for (const r of [1, 2, 3]) {
      expect(step(plan, `tiny#${r}/train`).inputs).toEqual([
        { role: "data", step: "tiny/data" },
        { role: "latents", step: "tiny/latents" },
        { role: "text", step: "tiny/text" }
      ])
      expect(step(plan, `tiny#${r}/evaluate`).inputs).toContainEqual({ role: "reference", step: "tiny/reference" })
    }
    // A baseline trains nothing: one generate, one evaluate, whatever the study's replicates.
    expect(kinds(plan, "baseline")).toEqual(["prepare-data", "generate", "evaluate", "report"])
    expect(step(plan, "baseline/generate").inputs).toEqual([])
    expect(plan.steps.filter((s) => s.kind === "train")).toHaveLength(5)
    expect(plan.steps.filter((s) => s.kind === "generate")).toHaveLength(6)
    expect(plan.steps.filter((s) => s.kind === "evaluate")).toHaveLength(6)
    expect(new Set(plan.steps.map((s) => s.key)).size).toBe(plan.steps.length)
    // Replicate 1 trains with the declared seed: the same step, the same cache entry as without replicates.
    expect(step(plan, "tiny#1/train").key).toBe(step(single, "tiny/train").key)
    expect(step(plan, "tiny#1/evaluate").key).toBe(step(single, "tiny/evaluate").key)
    const seeds = [1, 2, 3].map((r) => (step(plan, `tiny#${r}/train`).config as { train: { seed: number } }).train.seed)
    expect(seeds).toEqual([7, replicateSeed(7, 2), replicateSeed(7, 3)])
    expect(new Set(seeds).size).toBe(3)
    for (const seed of seeds) expect(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32).toBe(true)
    // Everything but the seed is the replicate's own declaration.
    const configs = [1, 2, 3].map((r) => ({
      ...(step(plan, `tiny#${r}/train`).config as { train: object }),
      train: { ...(step(plan, `tiny#${r}/train`).config as { train: object }).train, seed: 0 }
    }))
    expect(configs[1]).toEqual(configs[0])
    expect(configs[2]).toEqual(configs[0])
    expect(step(plan, "tiny#2/generate").config).toEqual(step(plan, "tiny#1/generate").config)
    expect(step(plan, "tiny#2/evaluate").config).toEqual(step(plan, "tiny#1/evaluate").config)
  })

  it("ask for their experiment's declared resources", async () => {
    const declaration = await Effect.runPromise(decodeDeclaration(replicated({
      resources: { train: { gpus: 1 } },
      experiments: [
        validExperiment({ resources: { train: { gpus: 4, qos: "long" } } }),
        validExperiment({ name: "lora", components: { unet: lora({ rank: 2, lr: 1e-3 }), vae: frozen(), textEncoders: frozen() }, replicates: 2 })
      ]
    })))
    const plan = compilePlan(declaration)
    for (const r of [1, 2, 3]) expect(stepResources(declaration, step(plan, `tiny#${r}/train`))).toMatchObject({ gpus: 4, qos: "long" })
    expect(stepResources(declaration, step(plan, "lora#2/train"))).toEqual({ cpus: 1, gpus: 1 })
  })

  it("are found by their experiment's name, replicate 1 (the declared seed) first: what sardine export and generate take", async () => {
    const plan = await planOf(replicated())
    expect(trainStepOf(plan.steps, "tiny")?.id).toBe("tiny#1/train")
    expect(trainStepOf(plan.steps, "lora")?.id).toBe("lora#1/train")
    expect(trainStepOf(plan.steps, "baseline")).toBeUndefined()
  })

  it("hand the report every replicate's evaluation, samples and training, with the counts and the declared pairs", async () => {
    const plan = await planOf(replicated())
    const report = step(plan, "report")
    expect(report.config).toMatchObject({ study: "replicated", replicates: [3, 2, 1], compare: [["tiny", "lora"]] })
    expect(report.inputs.map((i) => i.role)).toEqual([
      ...[1, 2, 3].flatMap((r) => [`evaluation:tiny#${r}`, `samples:tiny#${r}`, `training:tiny#${r}`]),
      ...[1, 2].flatMap((r) => [`evaluation:lora#${r}`, `samples:lora#${r}`, `training:lora#${r}`]),
      "evaluation:baseline",
      "samples:baseline"
    ])
  })

  it("a lone experiment with replicates ends in a report that sums them up; without, it has none", async () => {
    const plan = await planOf(validExperiment({ replicates: 2 }))
    expect(plan.steps.map((s) => s.id)).toEqual([
      "tiny/reference",
      "tiny/data",
      "tiny/latents",
      "tiny/text",
      "tiny#1/train",
      "tiny#1/generate",
      "tiny#1/evaluate",
      "tiny#2/train",
      "tiny#2/generate",
      "tiny#2/evaluate",
      "report"
    ])
    expect((await planOf(validExperiment())).steps.some((s) => s.kind === "report")).toBe(false)
  })

  it("refuses what cannot be meant: replicates of a baseline, comparisons of unknown or identical strategies, differing interval settings", async () => {
    const issues = async (input: unknown) => (await Effect.runPromise(Effect.flip(decodeDeclaration(input)))).lines.join("\n")
    expect(await issues(validExperiment({ name: "b", baseline: true, components: { unet: frozen() }, train: undefined, replicates: 3 })))
      .toContain("replicates: a baseline trains nothing: its replicates would all be the same model")
    const unknown = await issues(replicated({ compare: [["tiny", "nothing"], ["lora", "lora"]] }))
    expect(unknown).toContain(`compare.0.1: "nothing" is not an experiment of this study`)
    expect(unknown).toContain(`compare.1: compares "lora" with itself`)
    const differing = await issues(study({
      name: "s",
      experiments: [
        validExperiment(),
        validExperiment({ name: "other", evaluate: { reference: synthetic({ n: 4, size: 32, seed: 99 }), uncertainty: { resamples: 500 } } })
      ]
    }))
    expect(differing).toContain("experiments.1.evaluate.uncertainty: must equal experiments.0's")
  })
})

describe("declared folders in the keys", () => {
  it("a folder's fingerprint changes the keys of the steps that read it and of their dependents, and no other", async () => {
    const declaration = await Effect.runPromise(decodeDeclaration(validExperiment({
      data: imageFolder("data", { unit: "amplitude", resolution: { size: 32 } })
    })))
    const keys = (fingerprints: ReadonlyMap<string, string>) => new Map(compilePlan(declaration, fingerprints).steps.map((s) => [s.id, s.key]))
    const base = tinySd1
    const before = keys(new Map([["metadata:data", "metadata:a"], [`metadata:${base}`, "metadata:b"]]))
    const dataEdited = keys(new Map([["metadata:data", "metadata:c"], [`metadata:${base}`, "metadata:b"]]))
    const baseEdited = keys(new Map([["metadata:data", "metadata:a"], [`metadata:${base}`, "metadata:d"]]))
    const changed = (after: ReadonlyMap<string, string>) => [...before].filter(([id, key]) => after.get(id) !== key).map(([id]) => id)
    expect(changed(dataEdited)).toEqual(["tiny/data", "tiny/latents", "tiny/text", "tiny/train", "tiny/generate", "tiny/evaluate"])
    expect(changed(baseEdited)).toEqual(["tiny/latents", "tiny/text", "tiny/train", "tiny/generate", "tiny/evaluate"])
    // Steps that read no declared folder keep the keys they had before fingerprints existed.
    expect(before.get("tiny/reference")).toBe(compilePlan(declaration).steps.find((s) => s.id === "tiny/reference")!.key)
  })
})
