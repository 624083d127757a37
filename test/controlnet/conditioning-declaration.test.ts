import { NodeContext } from "@effect/platform-node"
import { Effect, Either, Exit, Layer } from "effect"
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { controlNet, diffusers, frozen, full, imageFolder, lora, synthetic, webDataset } from "../../framework/index.ts"
import { tinySd1, validExperiment } from "../support/declarations.ts"
import { repoRoot } from "../support/run-process.ts"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { syntheticClasses } from "../../framework/declaration/conditioning.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { checkEngineSupport } from "../../framework/plan/engine-support.ts"

/** A ControlNet on the synthetic label maps, with the scenes it samples: the valid declaration the cases break. */
const conditioned = (overrides: Parameters<typeof validExperiment>[0] = {}, conditioning: Partial<Parameters<typeof controlNet>[0]> = {}) =>
  validExperiment({
    conditioning: controlNet({ input: "label-map", from: "conditioning_file_name", treatment: full({ lr: 1e-4 }), ...conditioning }),
    generate: { conditions: synthetic({ n: 2, size: 32, seed: 5 }), seeds: [0], steps: 4 },
    ...overrides
  })

const folder = (path: string) => imageFolder(path, { unit: "amplitude", resolution: { size: 32 } })

const cases: ReadonlyArray<{ readonly name: string; readonly input: unknown; readonly lines: ReadonlyArray<string> }> = [
  {
    name: "an unknown input",
    input: conditioned({}, { input: "depth" as never }),
    lines: ["conditioning.input: must be one of \"label-map\", \"optical\", \"sar\" (got \"depth\")"]
  },
  {
    name: "a column the synthetic scenes do not have",
    input: conditioned({}, { from: "labels_file_name" }),
    lines: [
      "conditioning.from: synthetic scenes (data, generate.conditions) have no column \"labels_file_name\"; they have conditioning_file_name (label-map), optical_file_name (optical)"
    ]
  },
  {
    name: "optical conditioning read from the label-map column",
    input: conditioned({}, { input: "optical" }),
    lines: ["conditioning.input: is \"optical\", but conditioning_file_name of synthetic scenes (data, generate.conditions) holds label-map images"]
  },
  {
    name: "another SAR sensor on synthetic scenes, which have none",
    input: conditioned({}, { input: "sar", from: "sar_file_name" }),
    lines: [
      "conditioning.input: \"sar\" needs a second SAR image per scene, which synthetic scenes (data, generate.conditions) do not have; use an image folder whose metadata names one"
    ]
  },
  {
    name: "a class count that does not match the synthetic label maps",
    input: conditioned({}, { classes: { 1: "water", 2: "land", 3: "urban" } }),
    lines: [
      "conditioning.classes: the synthetic generator's label maps (data, generate.conditions) have 8 classes (1 water, 2 bare-field, 3 crops, 4 forest, 5 urban, 6 roads, 7 bridges, 8 ships); got 3 (1 water, 2 land, 3 urban) — leave classes out for synthetic scenes"
    ]
  },
  {
    name: "label maps of an image folder without their classes",
    input: conditioned({ data: folder("data/sar"), generate: { conditions: folder("data/scenes"), seeds: [0] } }),
    lines: ["conditioning.classes: is missing: label maps of an image folder (data, generate.conditions) need { <pixel value>: <class name> }"]
  },
  {
    name: "classes that are not pixel values, or name a class twice",
    input: conditioned({ data: folder("data/sar"), generate: { conditions: folder("data/scenes"), seeds: [0] } }, {
      classes: { 10: "water", 20: "water", x: "urban" }
    }),
    lines: ["conditioning.classes: keys must be pixel values, integers from 0 to 65535 (got \"x\")"]
  },
  {
    name: "classes on an optical input",
    input: conditioned({ data: folder("data/sar"), generate: { conditions: folder("data/scenes"), seeds: [0] } }, {
      input: "optical",
      from: "optical_file_name",
      classes: { 1: "water", 2: "urban" }
    }),
    lines: ["conditioning.classes: only label maps have classes (input is \"optical\")"]
  },
  {
    name: "a frozen ControlNet made from the UNet",
    input: conditioned({}, { treatment: frozen() }),
    lines: [
      "conditioning.treatment: a frozen ControlNet made from the UNet adds nothing (its zero convolutions stay zero); train it, or init it from a trained ControlNet folder"
    ]
  },
  {
    name: "an embedding for a ControlNet loaded from a folder",
    input: conditioned({}, { init: "models/controlnet-seg", embedding: [16, 32] }),
    lines: ["conditioning.embedding: shapes a new ControlNet (init \"unet\"); the ControlNet folder \"models/controlnet-seg\" brings its own"]
  },
  {
    name: "conditioning images from WebDataset shards",
    input: conditioned({
      data: webDataset("shards/train-{0..3}.tar", { image: "sar.png", caption: "txt", unit: "amplitude", resolution: { size: 32 } }),
      generate: { conditions: folder("data/scenes"), seeds: [0] }
    }, { classes: { 1: "water", 2: "urban" } }),
    lines: [
      "conditioning.from: names the metadata column \"conditioning_file_name\", but WebDataset shards (data) have no metadata columns and sardine does not read a ControlNet's conditioning images from shards; use an image folder or synthetic scenes"
    ]
  },
  {
    name: "a held-out dataset in WebDataset shards (its conditioning images are read for the held-out loss too)",
    input: conditioned({
      train: {
        steps: 10,
        validationLoss: { data: webDataset("shards/held-{0..1}.tar", { image: "sar.png", caption: "txt", unit: "amplitude", resolution: { size: 32 } }) }
      }
    }),
    lines: [
      "conditioning.from: names the metadata column \"conditioning_file_name\", but WebDataset shards (train.validationLoss.data) have no metadata columns and sardine does not read a ControlNet's conditioning images from shards; use an image folder or synthetic scenes"
    ]
  },
  {
    name: "label maps of a held-out image folder without their classes",
    input: conditioned({ train: { steps: 10, validationLoss: { data: folder("data/held-out") } } }),
    lines: ["conditioning.classes: is missing: label maps of an image folder (train.validationLoss.data) need { <pixel value>: <class name> }"]
  },
  {
    name: "a conditioned experiment without conditioning scenes",
    input: conditioned({ generate: { prompts: ["SAR image of a field"], seeds: [0] } }),
    lines: [
      "generate.conditions: is missing: a conditioned experiment samples the scenes of a dataset with conditioning images (its conditioning_file_name column) and compares each sample with its scene's true image"
    ]
  },
  {
    name: "prompts next to conditioning scenes",
    input: conditioned({ generate: { prompts: ["SAR image of a field"], conditions: synthetic({ n: 2, size: 32 }), seeds: [0] } }),
    lines: ["generate.prompts: is not used by a conditioned experiment: each scene of generate.conditions is prompted with its own caption; remove it"]
  },
  {
    name: "conditioning scenes without conditioning",
    input: validExperiment({ generate: { prompts: ["SAR image of a field"], conditions: synthetic({ n: 2, size: 32 }) } }),
    lines: ["generate.conditions: is for conditioned experiments only (declare conditioning: controlNet({ … }))"]
  },
  {
    name: "neither prompts nor conditions",
    input: validExperiment({ generate: { seeds: [0] } }),
    lines: ["generate.prompts: is missing (only an experiment that samples the scenes of generate.conditions may omit it)"]
  },
  {
    name: "a SAR condition normalised by dataset statistics",
    input: conditioned({
      data: imageFolder("data/sar", { unit: "amplitude", resolution: { size: 32 }, normalisation: { _tag: "mean-std", statistics: "dataset" } }),
      generate: { conditions: folder("data/scenes"), seeds: [0] }
    }, { input: "sar", from: "tsx_file_name" }),
    lines: [
      "data.normalisation.statistics: \"dataset\" statistics are not computed for conditioning SAR images (conditioning.input \"sar\"); declare \"per-image\" or given { mean, std }"
    ]
  },
  {
    name: "a baseline with a trained ControlNet",
    input: conditioned({ baseline: true, components: { unet: frozen() }, train: undefined }),
    lines: ["baseline: a baseline trains nothing, but conditioning is full"]
  },
  {
    name: "a trained ControlNet beside a trained VAE",
    input: conditioned({ components: { unet: frozen(), vae: full({ lr: 1e-4 }) } }),
    lines: [
      "components.vae: a trained VAE must be the only trained component (its latents would move under the UNet); declare VAE training as its own experiment"
    ]
  },
  {
    name: "a negative conditioning scale",
    input: conditioned({}, { scale: -1 }),
    lines: ["conditioning.scale: must be a number ≥ 0 (got -1)"]
  }
]

describe("conditioning declarations", () => {
  for (const { input, lines, name } of cases) {
    it(`refused: ${name}`, async () => {
      const result = await Effect.runPromise(Effect.either(decodeDeclaration(input)))
      if (Either.isRight(result)) throw new Error("expected the declaration to be rejected")
      expect(result.left.lines).toEqual(lines)
    })
  }

  it("accepted: LoRA UNet + full ControlNet on synthetic label maps, with defaults filled", async () => {
    const declaration = await Effect.runPromise(decodeDeclaration(conditioned({ components: { unet: lora({ rank: 4, lr: 1e-3 }) } })))
    if (declaration.kind !== "experiment") throw new Error("an experiment was declared")
    expect(declaration.conditioning).toEqual({
      _tag: "controlnet",
      input: "label-map",
      from: "conditioning_file_name",
      treatment: { _tag: "full", lr: 1e-4, weightDecay: 0, only: ["*"] },
      init: "unet",
      scale: 1,
      guessMode: false
    })
  })

  it("accepted: a frozen ControlNet from a folder on an image folder's optical images, without training anything else is a baseline", async () => {
    const input = conditioned({
      baseline: true,
      components: { unet: frozen() },
      train: undefined,
      data: folder("data/sar"),
      generate: { conditions: folder("data/scenes"), seeds: [0] }
    }, { input: "optical", from: "optical_file_name", treatment: frozen(), init: "models/controlnet-optical" })
    const declaration = await Effect.runPromise(decodeDeclaration(input))
    expect(declaration.kind === "experiment" && declaration.conditioning?.init).toBe("models/controlnet-optical")
  })

  it("loaded to run, and planned with its conditions prepared: the training data's and the scenes' conditioning images, the ControlNet in the adaptation", async () => {
    const declaration = await Effect.runPromise(decodeDeclaration(conditioned()))
    const dir = await mkdtemp(join(tmpdir(), "sardine-conditioned-"))
    try {
      const file = join(dir, "conditioned.json")
      await writeFile(file, JSON.stringify(encodeDeclaration(declaration)))
      const loaded = await Effect.runPromise(loadDeclaration(file).pipe(Effect.provide(NodeContext.layer)))
      expect(loaded.declaration).toEqual(declaration)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    const plan = compilePlan(declaration)
    const step = (id: string) => plan.steps.find((s) => s.id === id)!
    const prepared = { input: "label-map", column: "conditioning_file_name", classes: syntheticClasses }
    expect(step("tiny/data").config).toMatchObject({ conditioning: prepared })
    expect(step("tiny/conditions").config).toMatchObject({ conditioning: prepared, dataset: { seed: 5 } })
    expect(step("tiny/reference").config).not.toHaveProperty("conditioning")
    expect(step("tiny/generate").inputs.map((input) => input.role)).toContain("conditions")
    expect(step("tiny/train").config).toMatchObject({ adaptation: { controlnet: { ...prepared, init: "unet", scale: 1, guessMode: false } } })
    // Without conditioning, the same experiment's train step has another key (the ControlNet is part of what trains).
    const plain = compilePlan(await Effect.runPromise(decodeDeclaration(validExperiment())))
    expect(plain.steps.find((s) => s.id === "tiny/train")!.key).not.toBe(step("tiny/train").key)
    // The scale and guess mode shape sampling only: another scale samples the same trained ControlNet.
    const scaled = compilePlan(await Effect.runPromise(decodeDeclaration(conditioned({}, { scale: 0, guessMode: true }))))
    const scaledStep = (id: string) => scaled.steps.find((s) => s.id === id)!
    expect(scaledStep("tiny/train").key).toBe(step("tiny/train").key)
    expect(scaledStep("tiny/generate").key).not.toBe(step("tiny/generate").key)
    expect(scaledStep("tiny/generate").config).toMatchObject({ adaptation: { controlnet: { scale: 0, guessMode: true } } })
  })

  it("accepted by both engines when trained; refused as a baseline by both, with validation prompts by the torch engine, and made from a UNet from_unet cannot copy by both, naming the field and the engine", async () => {
    const problems = async (input: unknown, engine: "tfjs" | "torch") => {
      const exit = await Effect.runPromiseExit(
        Effect.provide(
          checkEngineSupport(await Effect.runPromise(decodeDeclaration(input)), engine, (p) => p),
          Layer.mergeAll(EngineEnvironmentsLive, WeightsLive, ModelArchitectureLive, NodeContext.layer)
        )
      )
      if (Exit.isSuccess(exit)) return []
      return exit.cause._tag === "Fail" && exit.cause.error._tag === "EngineUnsupported" ? exit.cause.error.problems : ["another failure"]
    }
    expect(await problems(conditioned(), "torch")).toEqual([])
    expect(await problems(conditioned(), "tfjs")).toEqual([])
    const validated = conditioned({ train: { ...validExperiment().train!, validationPrompts: ["sar image"] } })
    expect(await problems(validated, "torch")).toEqual([
      "train.validationPrompts: the torch engine samples validation images without the experiment's ControlNet (no conditioning image goes with a prompt); remove them (the generate step samples the conditioned scenes)"
    ])
    // A ControlNet folder to start from whose config the tfjs engine cannot build is refused now, not in the train step.
    const dir = await mkdtemp(join(tmpdir(), "sardine-controlnet-init-"))
    try {
      const config = JSON.parse(await readFile(join(repoRoot, "test/fixtures/controlnet/sd1-controlnet/config.json"), "utf8"))
      await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, norm_num_groups: null }))
      expect(await problems(conditioned({}, { init: dir }), "tfjs")).toEqual([
        expect.stringMatching(
          new RegExp(
            `^conditioning\\.init: ${
              join(dir, "config.json")
            }: norm_num_groups: sardine supports only a number of groups .*: the tfjs engine cannot build this ControlNet$`
          )
        )
      ])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    // A ControlNet made from a UNet diffusers' from_unet cannot copy (a layer count per block) is refused now on both engines.
    const base = await mkdtemp(join(tmpdir(), "sardine-controlnet-from-unet-"))
    try {
      await cp(tinySd1, base, { recursive: true })
      const unetFile = join(base, "unet", "config.json")
      const unet = JSON.parse(await readFile(unetFile, "utf8"))
      await writeFile(unetFile, JSON.stringify({ ...unet, layers_per_block: [1, 1, 2] }))
      const listed = conditioned({ base: diffusers(base, { family: "sd15" }) })
      for (const engine of ["tfjs", "torch"] as const) {
        expect(await problems(listed, engine)).toEqual([
          `conditioning.init: ${unetFile}: layers_per_block: diffusers' ControlNetModel takes one count for every block, not a list: the ${engine} engine ` +
          "makes conditioning.init \"unet\" as diffusers' ControlNetModel.from_unet does, which cannot make a ControlNet of this UNet; start from a " +
          "ControlNet folder (conditioning.init), or use another base"
        ])
      }
      // The same base with its ControlNet from a folder builds nothing from the UNet: accepted.
      expect(
        await problems(conditioned({ base: diffusers(base, { family: "sd15" }) }, { init: join(repoRoot, "test/fixtures/controlnet/sd1-controlnet") }), "torch")
      )
        .toEqual([])
    } finally {
      await rm(base, { recursive: true, force: true })
    }
    const baseline = conditioned({ baseline: true, components: { unet: frozen() }, train: undefined }, { treatment: frozen(), init: "models/controlnet" })
    for (const engine of ["tfjs", "torch"] as const) {
      expect(await problems(baseline, engine)).toEqual([
        `conditioning: the ${engine} engine samples a conditioned experiment with the ControlNet its training made, and a baseline trains none; train the experiment (baseline: false, with train), or remove conditioning`
      ])
    }
  })
})
