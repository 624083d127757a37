import { Effect, Either } from "effect"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { frozen, full, imageFolder, learnedToken, lora, study, synthetic } from "../../framework/index.ts"
import { validExperiment } from "../support/declarations.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

const sdxl = { _tag: "diffusers", path: "models/tiny-xl", family: "sdxl" } as const

/** Each case: a malformed declaration and the exact lines `sardine validate` must print for it. */
const cases: ReadonlyArray<{ readonly name: string; readonly input: unknown; readonly lines: ReadonlyArray<string | RegExp> }> = [
  {
    name: "LoRA rank 0",
    input: validExperiment({ components: { unet: lora({ rank: 0, lr: 1e-4 }) } }),
    lines: ["components.unet.rank: must be an integer ≥ 1 (got 0)"]
  },
  {
    name: "zero learning rate",
    input: validExperiment({ components: { unet: full({ lr: 0 }) } }),
    lines: ["components.unet.lr: must be a number > 0 (got 0)"]
  },
  {
    name: "negative token learning rate",
    input: validExperiment({
      components: { unet: full({ lr: 1e-4 }), token: learnedToken({ token: "<SAR>", init: "radar", lr: -1 }) }
    }),
    lines: ["components.token.lr: must be a number > 0 (got -1)"]
  },
  {
    name: "zero training steps",
    input: validExperiment({ train: { steps: 0 } }),
    lines: ["train.steps: must be an integer ≥ 1 (got 0)"]
  },
  {
    name: "a validation loss holding out more than half the data, measured every 0 steps, at no timestep",
    input: validExperiment({ train: { steps: 10, validationLoss: { fraction: 0.6, every: 0, timesteps: 0 } } }),
    lines: [
      "train.validationLoss.fraction: must be a number in (0, 0.5] (got 0.6)",
      "train.validationLoss.every: must be an integer ≥ 1 (got 0)",
      "train.validationLoss.timesteps: must be an integer ≥ 1 (got 0)"
    ]
  },
  {
    name: "a validation loss holding out nothing",
    input: validExperiment({ train: { steps: 10, validationLoss: { fraction: 0 } } }),
    lines: ["train.validationLoss.fraction: must be a number in (0, 0.5] (got 0)"]
  },
  {
    name: "a validation loss holding out no image of a synthetic set of 4",
    input: validExperiment({ train: { steps: 10, validationLoss: { fraction: 0.1 } } }),
    lines: ["train.validationLoss.fraction: holds out none of the 4 images of data (round(0.1 · 4) = 0)"]
  },
  {
    name: "a validation loss declaring both a fraction and a held-out dataset",
    input: validExperiment({ train: { steps: 10, validationLoss: { fraction: 0.25, data: synthetic({ n: 2, size: 32, seed: 3 }) } } }),
    lines: ["train.validationLoss.data: declare fraction (a share of the training data) or data (a held-out dataset), not both"]
  },
  {
    name: "a validation loss declaring neither a fraction nor a held-out dataset",
    input: validExperiment({ train: { steps: 10, validationLoss: { every: 2 } } }),
    lines: ["train.validationLoss.fraction: is missing: declare fraction (a share of the training data) or data (a held-out dataset)"]
  },
  {
    name: "a held-out dataset of another resolution and modality than the training data",
    input: validExperiment({ train: { steps: 10, validationLoss: { data: synthetic({ n: 2, size: 16, seed: 3, modality: "optical" }) } } }),
    lines: [
      "train.validationLoss.data: holds optical images, the training data sar images",
      "train.validationLoss.data.size: is 16 pixels square, the training data 32: the held-out loss is measured at the training resolution"
    ]
  },
  {
    name: "a held-out image folder of another resolution than the training data",
    input: validExperiment({ train: { steps: 10, validationLoss: { data: imageFolder("held-out", { unit: "amplitude", resolution: { size: 64 } }) } } }),
    lines: ["train.validationLoss.data.resolution: is 64 pixels square, the training data 32: the held-out loss is measured at the training resolution"]
  },
  {
    name: "a held-out dataset that is the training data",
    input: validExperiment({ train: { steps: 10, validationLoss: { data: synthetic({ n: 4, size: 32, seed: 1 }) } } }),
    lines: ["train.validationLoss.data: is the training data itself: it holds nothing out"]
  },
  {
    name: "a validation loss when only the VAE trains",
    input: validExperiment({
      components: { unet: frozen(), vae: full({ lr: 1e-4 }), textEncoders: frozen() },
      train: { steps: 10, validationLoss: { fraction: 0.2 } }
    }),
    lines: ["train.validationLoss: measures the diffusion loss, which nothing declared trains (only the VAE, or nothing)"]
  },
  {
    name: "textEncoder2 on an SD 1.5 base",
    input: validExperiment({ components: { unet: full({ lr: 1e-4 }), textEncoders: { textEncoder: frozen(), textEncoder2: lora({ rank: 4, lr: 1e-4 }) } } }),
    lines: ["components.textEncoders.textEncoder2: exists only on SDXL bases (base.family is \"sd15\")"]
  },
  {
    name: "a token learned by an encoder the base lacks",
    input: validExperiment({
      components: { unet: full({ lr: 1e-4 }), token: learnedToken({ token: "<SAR>", init: "radar", lr: 1e-3, encoders: ["textEncoder2"] }) }
    }),
    lines: ["components.token.encoders.0: textEncoder2 exists only on SDXL bases (base.family is \"sd15\")"]
  },
  {
    name: "a token learned by no encoder",
    input: validExperiment({
      base: sdxl,
      components: { unet: full({ lr: 1e-4 }), token: learnedToken({ token: "<SAR>", init: "radar", lr: 1e-3, encoders: [] }) }
    }),
    lines: ["components.token.encoders: must name at least one text encoder"]
  },
  {
    name: "a strategy that trains nothing",
    input: validExperiment({ components: { unet: frozen(), vae: frozen(), textEncoders: frozen() } }),
    lines: [
      "components: trains nothing (every component frozen, no learned token); mark the experiment `baseline: true` to sample the base model as it is"
    ]
  },
  {
    name: "a baseline that trains",
    input: validExperiment({ baseline: true }),
    lines: ["baseline: a baseline trains nothing, but unet is full"]
  },
  {
    name: "{token} without a declared token",
    input: validExperiment({ generate: { prompts: ["{token} image of a harbour"] } }),
    lines: ["generate.prompts.0: uses {token} but no learned token is declared (components.token)"]
  },
  {
    name: "a prompt naming another token",
    input: validExperiment({
      components: { unet: full({ lr: 1e-4 }), token: learnedToken({ token: "<SAR>", init: "radar", lr: 1e-3 }) },
      generate: { prompts: ["<SAR> image", { text: "<RADAR> image of a port", split: "unseen" }] }
    }),
    lines: ["generate.prompts.1: mentions <RADAR>, which is not the declared token <SAR>"]
  },
  {
    name: "duplicate experiment names in a study",
    input: study({ name: "dup", experiments: [validExperiment({ name: "a" }), validExperiment({ name: "b" }), validExperiment({ name: "a" })] }),
    lines: ["experiments.2.name: \"a\" is already the name of experiments.0"]
  },
  {
    name: "no kind",
    input: { name: "x" },
    lines: [
      "kind: must be \"experiment\", \"study\" or \"clip\" (got nothing); build declarations with experiment(…), study(…) or clipModel(…)"
    ]
  },
  {
    name: "a misspelt field",
    input: validExperiment({ components: { unet: { _tag: "lora", rnak: 4, rank: 4, lr: 1e-4 } as never } }),
    lines: ["components.unet.rnak: is unexpected, expected: \"_tag\" | \"rank\" | \"alpha\" | \"dropout\" | \"targets\" | \"lr\""]
  },
  {
    name: "a treatment that is not one",
    input: validExperiment({ components: { unet: "full" as never } }),
    lines: ["components.unet: must be frozen(), full({ lr }) or lora({ rank, lr }) (got \"full\")"]
  },
  {
    name: "a trained strategy without train settings",
    input: validExperiment({ train: undefined }),
    lines: ["train: is missing (only a baseline may omit it)"]
  },
  {
    name: "a VAE trained together with the UNet",
    input: validExperiment({ components: { unet: full({ lr: 1e-4 }), vae: lora({ rank: 4, lr: 1e-4 }) } }),
    lines: [
      "components.vae: a trained VAE must be the only trained component (its latents would move under the UNet); declare VAE training as its own experiment"
    ]
  },
  {
    name: "LoRA dropout of 1 and a bad name at once",
    input: validExperiment({ name: "Bad Name", components: { unet: lora({ rank: 4, lr: 1e-4, dropout: 1 }) } }),
    lines: [
      `name: must be 1–64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit (got "Bad Name")`,
      "components.unet.dropout: must be a number in [0, 1) (got 1)"
    ]
  },
  {
    name: "an unknown family and sampler",
    input: validExperiment({
      base: { _tag: "diffusers", path: "x", family: "sd9" as never },
      generate: { prompts: ["x"], sampler: "lms" as never }
    }),
    lines: [
      "base.family: must be one of \"sd15\", \"sd2\", \"sdxl\", \"tiny\" (got \"sd9\")",
      "generate.sampler: must be one of \"ddpm\", \"ddim\", \"euler\", \"euler_ancestral\", \"heun\", \"dpmsolver_multistep\", \"unipc_multistep\" (got \"lms\")"
    ]
  },
  {
    name: "a scheduler option the sampler's diffusers class does not read",
    input: validExperiment({ generate: { prompts: ["x"], sampler: "euler_ancestral", schedulerConfig: { use_karras_sigmas: true } } }),
    lines: [
      "generate.schedulerConfig.use_karras_sigmas: is read only by euler (EulerDiscreteScheduler), heun (HeunDiscreteScheduler), " +
      "dpmsolver_multistep (DPMSolverMultistepScheduler), unipc_multistep (UniPCMultistepScheduler), " +
      "not by euler_ancestral (EulerAncestralDiscreteScheduler)"
    ]
  },
  {
    name: "an unknown scheduler option and a bad value",
    input: validExperiment({ generate: { prompts: ["x"], sampler: "dpmsolver_multistep", schedulerConfig: { use_karras: true, solver_order: 5 } as never } }),
    lines: [
      /^generate\.schedulerConfig\.use_karras: is unexpected, expected: "timestep_spacing" \| "steps_offset"/,
      "generate.schedulerConfig.solver_order: must be 1, 2 or 3 (got 5)"
    ]
  },
  {
    name: "another solver's solver_type",
    input: validExperiment({ generate: { prompts: ["x"], sampler: "unipc_multistep", schedulerConfig: { solver_type: "midpoint" } } }),
    lines: ["generate.schedulerConfig.solver_type: must be one of \"bh1\", \"bh2\" for unipc_multistep (got \"midpoint\")"]
  },
  {
    name: "Karras with exponential σ",
    input: validExperiment({ generate: { prompts: ["x"], sampler: "heun", schedulerConfig: { use_karras_sigmas: true, use_exponential_sigmas: true } } }),
    lines: ["generate.schedulerConfig.use_exponential_sigmas: cannot be true together with use_karras_sigmas"]
  },
  {
    name: "a negative prompt naming the token when none is learned",
    input: validExperiment({ generate: { prompts: ["x"], negativePrompt: "{token}, blurry" } }),
    lines: ["generate.negativePrompt: uses {token} but no learned token is declared (components.token)"]
  },
  {
    name: "a stage built on an experiment declared after it",
    input: study({
      name: "stages",
      experiments: [
        validExperiment({ name: "unet", base: { _tag: "trained", experiment: "vae", family: "sd15" } }),
        validExperiment({ name: "vae", components: { unet: frozen(), vae: full({ lr: 1e-4 }) } })
      ]
    }),
    lines: ["experiments.0.base.experiment: \"vae\" is not an experiment declared before this one in the study (stages run in declaration order)"]
  },
  {
    name: "a stage built on a baseline, and a family that differs",
    input: study({
      name: "stages",
      experiments: [
        validExperiment({ name: "plain", baseline: true, components: { unet: frozen() }, train: undefined }),
        validExperiment({ name: "vae", components: { unet: frozen(), vae: full({ lr: 1e-4 }) } }),
        validExperiment({ name: "a", base: { _tag: "trained", experiment: "plain", family: "sd15" } }),
        validExperiment({ name: "b", base: { _tag: "trained", experiment: "vae", family: "sdxl" } })
      ]
    }),
    lines: [
      "experiments.2.base.experiment: \"plain\" is a baseline: it trains nothing to build on",
      "experiments.3.base.family: must match \"vae\"'s family \"sd15\" (got \"sdxl\")"
    ]
  },
  {
    name: "an error inside textEncoders, one treatment per encoder: only that form's line",
    input: validExperiment({ components: { unet: full({ lr: 1e-4 }), textEncoders: { textEncoder: lora({ rank: 0, lr: 1e-4 }) } } }),
    lines: ["components.textEncoders.textEncoder.rank: must be an integer ≥ 1 (got 0)"]
  },
  {
    name: "an error inside textEncoders, one treatment for all: only that form's line",
    input: validExperiment({ components: { unet: full({ lr: 1e-4 }), textEncoders: lora({ rank: 0, lr: 1e-4 }) } }),
    lines: ["components.textEncoders.rank: must be an integer ≥ 1 (got 0)"]
  },
  {
    name: "a misspelt text encoder name",
    input: validExperiment({ components: { unet: full({ lr: 1e-4 }), textEncoders: { textEncoder1: frozen() } as never } }),
    lines: [
      "components.textEncoders.textEncoder1: is unexpected, expected: \"textEncoder\" | \"textEncoder2\"",
      "components.textEncoders.textEncoder: is missing"
    ]
  },
  {
    name: "a text encoder treatment given as a string",
    input: validExperiment({ components: { unet: full({ lr: 1e-4 }), textEncoders: "frozen" as never } }),
    lines: ["components.textEncoders: must be frozen(), full({ lr }) or lora({ rank, lr }) (got \"frozen\")"]
  },
  {
    name: "NaN and Infinity print as themselves",
    input: validExperiment({ components: { unet: full({ lr: Number.NaN }) }, train: { steps: Number.POSITIVE_INFINITY } }),
    lines: ["components.unet.lr: must be a number > 0 (got NaN)", "train.steps: must be an integer ≥ 1 (got Infinity)"]
  },
  {
    name: "dataset statistics of neither accepted form",
    input: validExperiment({
      data: { _tag: "image-folder", path: "x", unit: "db", normalisation: { _tag: "mean-std", statistics: "global" } } as never
    }),
    lines: ["data.normalisation.statistics: must be one of \"per-image\", \"dataset\" (got \"global\")"]
  },
  {
    name: "a token that does not look like one",
    input: validExperiment({
      components: { unet: full({ lr: 1e-4 }), token: learnedToken({ token: "SAR", init: "radar", lr: 1e-3 }) }
    }),
    lines: ["components.token.token: must look like <NAME> without spaces (got \"SAR\")"]
  }
]

describe("malformed declarations name the field and the rule", () => {
  for (const { input, lines, name } of cases) {
    it(name, async () => {
      const result = await Effect.runPromise(Effect.either(decodeDeclaration(input)))
      if (Either.isRight(result)) throw new Error("expected the declaration to be rejected")
      expect(result.left.lines).toEqual(lines.map((line) => (typeof line === "string" ? line : expect.stringMatching(line))))
    })
  }

  it("`sardine validate` prints every problem on stderr and exits 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-malformed-"))
    const file = join(dir, "bad.json")
    await writeFile(file, JSON.stringify(cases.find((c) => c.name.startsWith("LoRA dropout"))!.input))
    const result = await sardine(["validate", file])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    for (const line of cases.find((c) => c.name.startsWith("LoRA dropout"))!.lines) expect(result.stderr).toContain(line as string)
  })

  it("`sardine validate` names a file that is not JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-malformed-"))
    const file = join(dir, "broken.json")
    await writeFile(file, "{ \"kind\": ")
    const result = await sardine(["validate", file])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${file}: not valid JSON`)
  })

  it("`sardine validate` on a builder that refuses its arguments: the rule and the declaration's line, no stack", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-malformed-"))
    const file = join(dir, "bad-dataset.ts")
    await writeFile(
      file,
      [
        `import { synthetic } from ${JSON.stringify(join(repoRoot, "framework/index.ts"))}`,
        "",
        "export default synthetic({ n: 0, size: 32 })",
        ""
      ].join("\n")
    )
    const result = await sardine(["validate", file])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("n: must be an integer ≥ 1 (got 0)")
    expect(result.stderr).toContain(`(called at ${file}:3:`)
    expect(result.stderr).not.toContain("node:internal")
  })

  it("`sardine validate` on a TypeScript syntax error: the error at its line and column, the line, no compiler stack", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-malformed-"))
    const file = join(dir, "typo.ts")
    await writeFile(
      file,
      [
        `import { synthetic } from ${JSON.stringify(join(repoRoot, "framework/index.ts"))}`,
        "",
        "export default synthetic({ n: 2,, size: 32 })",
        ""
      ].join("\n")
    )
    const result = await sardine(["validate", file])
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `error: ${file}: cannot be compiled:\n  ${file}:3:33: Expected identifier but found ","\n` +
        "    export default synthetic({ n: 2,, size: 32 })\n" +
        `    ${" ".repeat(32)}^\n`
    )
  })

  it("`sardine validate` on a declaration outside a project: how to install sardine next to it, no module-loader stack", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-outside-"))
    const file = join(dir, "study.ts")
    await writeFile(file, "import { synthetic } from \"sardine\"\n\nexport default synthetic({ n: 2, size: 32 })\n")
    const result = await sardine(["validate", file], { cwd: dir })
    expect(result.code).toBe(1)
    expect(result.stderr).toBe([
      `error: ${file}: imports "sardine", which is not installed in ${dir} or a folder above it.`,
      `  Install this sardine next to the declaration:  cd ${dir} && npm install ${repoRoot}`,
      `  or keep the declaration inside the sardine clone (e.g. ${repoRoot}/experiments/), where "sardine" is always found.`,
      ""
    ].join("\n"))
  })

  it("usage errors exit 2", async () => {
    expect((await sardine(["validate"])).code).toBe(2)
    expect((await sardine(["no-such-command"])).code).toBe(2)
    expect((await sardine(["validate", "/no/such/file.ts"])).code).toBe(2)
  })

  it("every command has --help", async () => {
    for (const command of ["validate", "show", "plan", "run"]) {
      const result = await sardine([command, "--help"])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("USAGE")
    }
  })
})
