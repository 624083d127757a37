import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Option, ParseResult, Schema } from "effect"
import type { PlatformError } from "@effect/platform/Error"
import { basename, dirname, join, resolve } from "node:path"
import type { BaseModel } from "../declaration/base-model.ts"
import { resolveAdaptation, type ResolvedAdaptation } from "../declaration/adaptation.ts"
import { Components } from "../declaration/components.ts"
import type { Normalisation } from "../declaration/dataset.ts"
import { experimentsOf } from "../declaration/experiment.ts"
import { Generation, type GenerationInput, samplerNames } from "../declaration/generation.ts"
import { servesExperiment } from "../declaration/replicates.ts"
import type { StepOf } from "../plan/step.ts"
import { cacheLayout, isDone } from "../runner/cache.ts"
import { Progress } from "../runner/progress.ts"
import { denormalise, type DenormalisedUnit, invertibleNormalisation } from "../sar/denormalisation.ts"
import { type AdapterFile, Engine, EngineEnvironments, type EngineName, type GeneratedSample, samplesIndexFile } from "../services/engine.ts"
import { ModelArchitecture } from "../services/model-architecture.ts"
import { ImageIO } from "../services/image-io.ts"
import { onnxBackendText, OnnxEngine, OnnxManifest, onnxManifestFile } from "../services/onnx-pipeline.ts"
import { writeFolderAtomic } from "../files/atomic-write.ts"
import { sha256File } from "../files/folder-files.ts"
import { statIfPresent } from "../files/if-present.ts"
import { pipelineFolder } from "../steps/engine-steps.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { loadPlan } from "./declaration-plan.ts"
import { lookupPlans, trainedPlan, trainStepOf } from "./trained-plan.ts"

/**
 * `sardine generate SOURCE --out DIR [--prompt …] …`: images from an experiment's trained model (found
 * in the cache through its plan; the base for a baseline), from a diffusers pipeline folder (an export,
 * a downloaded model), from such a folder plus LoRA / textual-inversion files, or from an ONNX export
 * folder on onnxruntime-node (`--engine onnx`). Settings default to
 * the experiment's `generate` (a folder: diffusers' defaults); the options override them. Writes what
 * the generate step writes (float32 TIFF + PNG per sample, samples.json), each record of samples.json
 * with every setting, into a temporary folder renamed to DIR when complete.
 */

export class GenerateFailed extends Schema.TaggedError<GenerateFailed>()("GenerateFailed", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/** A usage error: printed (as @effect/cli prints parse errors) and exit code 2. */
const usage = (message: string) => Effect.zipRight(Console.error(message), Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))))

/** Generation field → the option that sets it, for error messages. */
const optionOf: Record<string, string> = {
  prompts: "--prompt / --prompts",
  negativePrompt: "--negative-prompt",
  seeds: "--seed / --seeds",
  samplesPerPrompt: "-n",
  sampler: "--sampler",
  schedulerConfig: "--scheduler-config",
  steps: "--steps",
  guidanceScale: "--guidance",
  eta: "--eta",
  resolution: "--size"
}

const options = {
  source: Args.text({ name: "source" }).pipe(
    Args.withDescription("An experiment or study file (its trained model from the cache), or a diffusers pipeline folder")
  ),
  experiment: Options.text("experiment").pipe(Options.optional, Options.withDescription("Which experiment of a study")),
  prompt: Options.text("prompt").pipe(Options.repeated, Options.withDescription("A prompt (repeatable); replaces the experiment's prompts")),
  prompts: Options.file("prompts", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("Prompts from a file: one per line (.txt), a JSON array of strings or prompt objects (.json), or JSON lines with \"text\" (.jsonl)")
  ),
  negativePrompt: Options.text("negative-prompt").pipe(Options.optional, Options.withDescription("What guidance steers away from, for every prompt")),
  // Text, parsed here: @effect/cli 0.x rejects a single repeated integer option ("'3' is not a integer").
  seed: Options.text("seed").pipe(Options.repeated, Options.withDescription("A noise seed (repeatable)")),
  seeds: Options.text("seeds").pipe(Options.optional, Options.withDescription("Seeds as ranges and lists: 0-9 or 1,5,7 or 0-3,10")),
  count: Options.integer("count").pipe(Options.withAlias("n"), Options.optional, Options.withDescription("Samples per prompt and seed")),
  steps: Options.integer("steps").pipe(Options.optional, Options.withDescription("Inference steps")),
  guidance: Options.float("guidance").pipe(Options.optional, Options.withDescription("Classifier-free guidance scale (≤ 1: none)")),
  sampler: Options.choice("sampler", samplerNames).pipe(Options.optional, Options.withDescription("The sampler (a diffusers scheduler class)")),
  schedulerConfig: Options.keyValueMap("scheduler-config").pipe(
    Options.optional,
    Options.withDescription("diffusers scheduler config keys over the pipeline's, e.g. use_karras_sigmas=true algorithm_type=sde-dpmsolver++")
  ),
  eta: Options.float("eta").pipe(Options.optional, Options.withDescription("DDIM's η")),
  size: Options.integer("size").pipe(Options.optional, Options.withDescription("Image side in pixels")),
  engine: Options.choice("engine", ["tfjs", "torch", "onnx", "auto"]).pipe(
    Options.optional,
    Options.withDescription(
      "tfjs (embedded), torch (the PyTorch worker), onnx (an ONNX export folder on onnxruntime-node: `sardine export … --format onnx`), or auto " +
        "(torch when its Python is configured). Default: an experiment's engine, onnx for an ONNX export folder, else tfjs"
    )
  ),
  lora: Options.text("lora").pipe(
    Options.repeated,
    Options.withDescription("A LoRA file (kohya or diffusers/PEFT safetensors) on a pipeline folder, FILE or FILE:SCALE (repeatable)")
  ),
  embedding: Options.text("embedding").pipe(
    Options.repeated,
    Options.withDescription("A textual-inversion file on a pipeline folder, FILE or FILE:TOKEN (when the file does not name its token)")
  ),
  denormalise: Options.choice("denormalise", ["amplitude", "db"]).pipe(
    Options.repeated,
    Options.withDescription("Also write each sample de-normalised to linear amplitude or dB (needs invertible normalisation statistics)")
  ),
  dbWindow: Options.text("db-window").pipe(Options.optional, Options.withDescription("The normalisation of a folder source: dB window MIN,MAX")),
  meanStd: Options.text("mean-std").pipe(Options.optional, Options.withDescription("The normalisation of a folder source: A/(MEAN + K·STD) as MEAN,STD[,K]")),
  out: Options.text("out").pipe(Options.map((path) => resolve(path)), Options.withDescription("The folder to write (must not exist, or be empty)")),
  cacheDir: cacheDirOption
}

type Parsed = {
  readonly [K in keyof typeof options]: (typeof options)[K] extends Args.Args<infer A> ? A : (typeof options)[K] extends Options.Options<infer A> ? A : never
}

/** "0-3,7,10-11" → [0, 1, 2, 3, 7, 10, 11]; a problem names `option`. */
const parseSeeds = (option: string, text: string): Array<number> | string => {
  const out: Array<number> = []
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (range === null) return `${option}: "${part}" is not a seed or a range (e.g. 0-9)`
    const [from, to] = [Number(range[1]), Number(range[2] ?? range[1])]
    if (to < from) return `${option}: ${part} runs backwards`
    if (to - from >= 100_000) return `${option}: ${part} is more than 100000 seeds`
    for (let s = from; s <= to; s++) out.push(s)
  }
  return out.length > 0 ? out : `${option}: no seeds given`
}

/** A --scheduler-config value as JSON when it reads as JSON (true, 3, [1], "x"), else the text. */
const configValue = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Prompts from a file: .json (array), .jsonl ("text" or "prompt" per line), otherwise one per line (# comments). */
/** A file operation that failed, as the command reports it (PlatformError's message names the path). */
const failedOn = (e: PlatformError) => new GenerateFailed({ reason: e.message })

const readText = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(Effect.mapError(failedOn))

const exists = (path: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.exists(path)).pipe(Effect.mapError(failedOn))

const readPrompts = (file: string) =>
  readText(file).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: (): Array<unknown> => {
          if (file.endsWith(".json")) {
            const parsed = JSON.parse(text) as unknown
            if (!Array.isArray(parsed)) throw new Error("must be a JSON array of prompts")
            return parsed
          }
          const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
          if (!file.endsWith(".jsonl")) return lines
          return lines.map((line, i) => {
            const record = JSON.parse(line) as Record<string, unknown>
            const prompt = record.text ?? record.prompt
            if (typeof prompt !== "string") throw new Error(`line ${i + 1} has no "text" or "prompt" string`)
            return prompt
          })
        },
        catch: (e) => new GenerateFailed({ reason: `--prompts ${file}: ${(e as Error).message}` })
      })
    )
  )

/** FILE or FILE:SUFFIX: the suffix only when what comes before it is an existing file. */
const fileWithSuffix = (value: string) =>
  Effect.gen(function*() {
    const at = value.lastIndexOf(":")
    const suffixed = at > 0 && (yield* exists(value.slice(0, at))) && !(yield* exists(value))
    const found: { readonly file: string; readonly suffix?: string } = suffixed
      ? { file: resolve(value.slice(0, at)), suffix: value.slice(at + 1) }
      : { file: resolve(value) }
    return found
  })

const adapterFiles = (parsed: Parsed) =>
  Effect.gen(function*() {
    const files: Array<AdapterFile> = []
    for (const value of parsed.lora) {
      const { file, suffix } = yield* fileWithSuffix(value)
      if (!(yield* exists(file))) return yield* usage(`--lora ${value}: no such file`)
      const scale = suffix === undefined ? 1 : Number(suffix)
      if (!Number.isFinite(scale)) return yield* usage(`--lora ${value}: the scale after ":" must be a number`)
      files.push({ kind: "lora", file, scale })
    }
    for (const value of parsed.embedding) {
      const { file, suffix } = yield* fileWithSuffix(value)
      if (!(yield* exists(file))) return yield* usage(`--embedding ${value}: no such file`)
      files.push({ kind: "embedding", file, ...(suffix === undefined || suffix === "" ? {} : { token: suffix }) })
    }
    return files
  })

const sha256 = (file: string) => sha256File(file).pipe(Effect.map((r) => r.sha256), Effect.mapError(failedOn))

/** What to sample with: the engine request's model part, the declared settings, and a description for samples.json. */
interface Source {
  /** The engine that samples: the plan's for an experiment (its steps' keys name it), else --engine's. */
  readonly engine: EngineName | "onnx"
  /** An ONNX export folder's manifest (then `base.path` is that folder). */
  readonly onnx?: OnnxManifest
  readonly base: { readonly base: BaseModel; readonly path: string }
  readonly adaptation: ResolvedAdaptation
  readonly modelDir?: string
  readonly generate: Generation
  readonly normalisation?: Normalisation
  readonly description: Record<string, unknown>
}

const frozen = Schema.decodeUnknownSync(Components)({ unet: { _tag: "frozen" } })

const readConfig = (folder: string, file: string) =>
  Effect.flatMap(readText(join(folder, file)), (text) =>
    Effect.try({
      try: () => JSON.parse(text) as Record<string, unknown>,
      catch: (e) => new GenerateFailed({ reason: `${join(folder, file)}: ${(e as Error).message}` })
    }))

/** Pixels per latent per side: 2^(VAE blocks − 1), diffusers' `vae_scale_factor`. */
const vaeScaleFactor = (pipeline: string) =>
  Effect.map(readConfig(pipeline, "vae/config.json"), (vae) => 2 ** ((Array.isArray(vae.block_out_channels) ? vae.block_out_channels.length : 1) - 1))

/** An ONNX export folder (sardine-onnx.json): diffusers' defaults, the size from the UNet's sample_size. */
const onnxSource = (folder: string, engineChoice: Parsed["engine"]) =>
  Effect.gen(function*() {
    const choice = Option.getOrElse(engineChoice, () => "onnx" as const)
    if (choice !== "onnx") return yield* usage(`${folder} is an ONNX export (${onnxManifestFile}): sample it with --engine onnx, not ${choice}`)
    const file = join(folder, onnxManifestFile)
    const manifest = yield* Effect.flatMap(
      readConfig(folder, onnxManifestFile),
      (json) =>
        Effect.mapError(Schema.decodeUnknown(OnnxManifest)(json), (e) =>
          new GenerateFailed({ reason: `${file}: not a sardine ONNX export manifest: ${e.message}` }))
    )
    const family = manifest.family === "sdxl" ? "sdxl" as const : "sd15" as const
    const source: Source = {
      engine: "onnx",
      onnx: manifest,
      base: { base: { _tag: "diffusers", path: folder, family }, path: folder },
      adaptation: resolveAdaptation(frozen, family),
      generate: Schema.decodeUnknownSync(Generation)({ prompts: ["x"], resolution: manifest.sampleSize * manifest.vaeScaleFactor }),
      description: { kind: "onnx-folder", path: folder, pipeline: manifest.pipeline, opset: manifest.opset }
    }
    return source
  })

/** A diffusers pipeline folder: diffusers' defaults, the size from the UNet's sample_size. */
const folderSource = (folder: string, engineChoice: Parsed["engine"]) =>
  Effect.gen(function*() {
    // --engine onnx on a folder without the ONNX manifest was refused by the command.
    const choice = Option.getOrElse(Option.filter(engineChoice, (e) => e !== "onnx"), () => "tfjs" as const)
    const engine: EngineName = choice !== "auto" ? choice : (yield* (yield* EngineEnvironments).torchConfigured) ? "torch" : "tfjs"
    const index = yield* readConfig(folder, "model_index.json")
    const unet = yield* readConfig(folder, "unet/config.json")
    const family = String(index._class_name ?? "").includes("XL") ? "sdxl" as const : "sd15" as const
    const side = Number(unet.sample_size) * (yield* vaeScaleFactor(folder))
    const source: Source = {
      engine,
      base: { base: { _tag: "diffusers", path: folder, family }, path: folder },
      adaptation: resolveAdaptation(frozen, family),
      generate: Schema.decodeUnknownSync(Generation)({ prompts: ["x"], ...(Number.isInteger(side) && side >= 8 ? { resolution: side } : {}) }),
      description: { kind: "diffusers-folder", path: folder, pipeline: index._class_name }
    }
    return source
  })

/** An experiment of a declaration: its generate step's settings, its trained model from the cache. */
const declarationSource = (file: string, wanted: string | undefined, cacheDir: string, engineChoice: Parsed["engine"]) =>
  Effect.gen(function*() {
    if (Option.contains(engineChoice, "onnx")) {
      return yield* usage(
        `--engine onnx samples an ONNX export folder; make one with \`sardine export ${file} --format onnx --out DIR\`, then \`sardine generate DIR\``
      )
    }
    // The plan with the declared folders' fingerprints and the engine in its keys, as `sardine run` wrote them to the cache.
    const { engine: defaultEngine, loaded, plan: defaultPlan } = yield* loadPlan(file, { engine: Option.filter(engineChoice, (e) => e !== "onnx"), cacheDir })
    const experiments = experimentsOf(loaded.declaration)
    const chosen = wanted === undefined ? experiments : experiments.filter((e) => e.name === wanted)
    const names = experiments.map((e) => e.name).join(", ") || "none"
    const target = chosen.length === 1 ? chosen[0] : undefined
    if (target === undefined) {
      return yield* usage(
        wanted === undefined
          ? `${file} declares ${experiments.length} experiments (${names}); name one with --experiment`
          : `--experiment ${wanted}: no experiment of that name in ${file} (it declares ${names})`
      )
    }
    // The trained model is found whichever engine made it, and sampled on that engine, as its generate step would be.
    const plans = yield* lookupPlans(loaded, engineChoice, { engine: defaultEngine, plan: defaultPlan }, cacheDir)
    const { engine, plan } = yield* trainedPlan(plans, target.name, cacheDir)
    const step = plan.steps.find((s): s is StepOf<"generate"> => s.kind === "generate" && servesExperiment(s.experiments, target.name))
    if (step === undefined) return yield* new GenerateFailed({ reason: `${target.name} has no generate step` })
    const cache = cacheLayout(cacheDir)
    const notDone = (id: string, key: string) =>
      new GenerateFailed({ reason: `${id} has not finished (no ${cache.done(key)}); run \`sardine run ${file}\` first (or give --cache-dir)` })
    // As the generate step reads them: the base (declared, or made by an earlier step) and the trained model.
    const input = (role: string) => step.inputs.filter((i) => i.role === role).map((i) => plan.steps.find((s) => s.id === i.step)!)
    const madeBase = input("base")[0]
    if (madeBase !== undefined && !(yield* isDone(cache, madeBase.key))) return yield* notDone(madeBase.id, madeBase.key)
    const train = trainStepOf(plan.steps, target.name)
    if (train !== undefined && !(yield* isDone(cache, train.key))) return yield* notDone(train.id, train.key)
    const { base } = step.config
    const source: Source = {
      engine,
      base: {
        base,
        path: madeBase !== undefined ? join(cache.done(madeBase.key), pipelineFolder) : resolve(loaded.directory, base._tag === "diffusers" ? base.path : ".")
      },
      adaptation: step.config.adaptation,
      ...(train === undefined ? {} : { modelDir: cache.done(train.key) }),
      generate: step.config.generate,
      normalisation: target.data.normalisation,
      description: {
        kind: "experiment",
        file: resolve(file),
        experiment: target.name,
        generateStep: step.key,
        ...(train === undefined ? {} : { trainStep: train.key })
      }
    }
    return source
  })

/** The settings: the source's, with every given option over them, checked as a generation declaration. */
const settingsOf = (source: Source, parsed: Parsed) =>
  Effect.gen(function*() {
    // Another sampler starts from its own defaults: the source's scheduler options may not apply to it.
    const { schedulerConfig: declaredConfig, ...declared } = Schema.encodeSync(Generation)(source.generate)
    const sampler = Option.getOrUndefined(parsed.sampler)
    const keepConfig = declaredConfig !== undefined && (sampler === undefined || sampler === source.generate.sampler)
    const cliConfig = Option.match(parsed.schedulerConfig, {
      onNone: () => undefined,
      onSome: (map) => Object.fromEntries([...map].map(([k, v]) => [k, configValue(v)]))
    })
    const schedulerConfig = keepConfig || cliConfig !== undefined ? { ...(keepConfig ? declaredConfig : {}), ...cliConfig } : undefined
    const prompts = [...parsed.prompt, ...(Option.isSome(parsed.prompts) ? yield* readPrompts(parsed.prompts.value) : [])]
    if (prompts.length === 0 && source.description.kind !== "experiment") return yield* usage("give the prompts: --prompt TEXT (repeatable) or --prompts FILE")
    let seeds: Array<number> = []
    for (const [option, text] of [...parsed.seed.map((s) => ["--seed", s] as const), ...Option.toArray(parsed.seeds).map((s) => ["--seeds", s] as const)]) {
      const list = parseSeeds(option, text)
      if (typeof list === "string") return yield* usage(list)
      seeds = seeds.concat(list)
    }
    const input: GenerationInput = {
      ...declared,
      ...(sampler === undefined ? {} : { sampler }),
      ...(schedulerConfig === undefined ? {} : { schedulerConfig: schedulerConfig as NonNullable<GenerationInput["schedulerConfig"]> }),
      ...(prompts.length > 0 ? { prompts: prompts as NonNullable<GenerationInput["prompts"]> } : {}),
      ...(seeds.length > 0 ? { seeds } : {}),
      ...Option.match(parsed.negativePrompt, { onNone: () => ({}), onSome: (negativePrompt) => ({ negativePrompt }) }),
      ...Option.match(parsed.count, { onNone: () => ({}), onSome: (samplesPerPrompt) => ({ samplesPerPrompt }) }),
      ...Option.match(parsed.steps, { onNone: () => ({}), onSome: (steps) => ({ steps }) }),
      ...Option.match(parsed.guidance, { onNone: () => ({}), onSome: (guidanceScale) => ({ guidanceScale }) }),
      ...Option.match(parsed.eta, { onNone: () => ({}), onSome: (eta) => ({ eta }) }),
      ...Option.match(parsed.size, { onNone: () => ({}), onSome: (resolution) => ({ resolution }) })
    }
    return yield* Schema.decodeUnknown(Generation)(input, { errors: "all" }).pipe(
      Effect.catchAll((error) =>
        usage(
          ParseResult.ArrayFormatter.formatErrorSync(error)
            .map((issue) =>
              `${optionOf[String(issue.path[0])] ?? String(issue.path[0])}${
                issue.path.length > 1 ? ` (${issue.path.slice(1).join(".")})` : ""
              }: ${issue.message}`
            )
            .join("\n")
        )
      )
    )
  })

/** The normalisation the de-normalised files invert: --db-window / --mean-std, else the experiment's data. */
const normalisationOf = (source: Source, parsed: Parsed) =>
  Effect.gen(function*() {
    const numbers = (option: string, text: string, count: ReadonlyArray<number>) => {
      const values = text.split(",").map((v) => Number(v.trim()))
      return values.every(Number.isFinite) && count.includes(values.length)
        ? values
        : `${option} ${text}: expected ${count.join(" or ")} comma-separated numbers`
    }
    if (Option.isSome(parsed.dbWindow) && Option.isSome(parsed.meanStd)) return yield* usage("give one of --db-window and --mean-std")
    if (Option.isSome(parsed.dbWindow)) {
      const v = numbers("--db-window", parsed.dbWindow.value, [2])
      if (typeof v === "string") return yield* usage(v)
      const [min, max] = v as [number, number] // `numbers` checked the count
      if (!(max > min)) return yield* usage(`--db-window ${parsed.dbWindow.value}: MAX must be greater than MIN`)
      return { _tag: "db-window", min, max } satisfies Normalisation
    }
    if (Option.isSome(parsed.meanStd)) {
      const v = numbers("--mean-std", parsed.meanStd.value, [2, 3])
      if (typeof v === "string") return yield* usage(v)
      const [mean, std, k = 3] = v as [number, number, number?] // `numbers` checked the count
      if (!(mean > 0 && std >= 0 && k >= 0)) return yield* usage(`--mean-std ${parsed.meanStd.value}: MEAN must be > 0, STD and K ≥ 0`)
      return { _tag: "mean-std", k, statistics: { mean, std } } satisfies Normalisation
    }
    return source.normalisation
  })

/** A folder to write into: absent, or an empty folder. */
const checkOut = (out: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* statIfPresent(out).pipe(Effect.mapError(failedOn))
    if (Option.isNone(info)) return
    if (info.value.type !== "Directory") return yield* usage(`--out ${out}: exists and is not a folder`)
    const entries = yield* fs.readDirectory(out).pipe(Effect.mapError(failedOn))
    if (entries.length > 0) return yield* usage(`--out ${out}: exists and is not empty; choose another folder or remove it`)
  })

export const generateCommand = Command.make("generate", options, (parsed) =>
  Effect.gen(function*() {
    const out = parsed.out
    yield* checkOut(out)
    const sourcePath = resolve(parsed.source)
    const sourceInfo = yield* statIfPresent(sourcePath).pipe(Effect.mapError(failedOn))
    if (Option.isNone(sourceInfo)) return yield* usage(`${parsed.source}: no such file or folder`)
    const folder = sourceInfo.value.type === "Directory"
    const onnxFolder = folder && (yield* exists(join(sourcePath, onnxManifestFile)))
    if (folder && !onnxFolder && Option.contains(parsed.engine, "onnx")) {
      return yield* usage(
        `--engine onnx: ${parsed.source} is not an ONNX export (no ${onnxManifestFile}); make one with \`sardine export EXPERIMENT --format onnx --out DIR\``
      )
    }
    if (folder && !onnxFolder && !(yield* exists(join(sourcePath, "model_index.json")))) {
      return yield* usage(`${parsed.source}: a folder without model_index.json is not a diffusers pipeline (nor, without ${onnxManifestFile}, an ONNX export)`)
    }
    const files = yield* adapterFiles(parsed)
    if (files.length > 0 && !folder) {
      return yield* usage("--lora and --embedding apply to a pipeline folder; export the experiment (sardine export) or give its base folder")
    }
    if (folder && Option.isSome(parsed.experiment)) return yield* usage("--experiment applies to a declaration file, not to a pipeline folder")
    const source = onnxFolder
      ? yield* onnxSource(sourcePath, parsed.engine)
      : folder
      ? yield* folderSource(sourcePath, parsed.engine)
      : yield* declarationSource(sourcePath, Option.getOrUndefined(parsed.experiment), parsed.cacheDir, parsed.engine)
    const engineName = source.engine
    if (files.length > 0 && engineName === "onnx") {
      return yield* usage(
        "--lora / --embedding: the onnx engine does not apply LoRA or textual-inversion files (an export's graphs hold their weights); " +
          "export the trained model with `sardine export … --format onnx`"
      )
    }
    const generate = yield* settingsOf(source, parsed)
    if (source.description.kind === "diffusers-folder" && engineName !== "onnx") {
      // A folder given here meets no plan: what a plan would refuse in its configs is refused here, before sampling.
      const refusals = yield* (yield* ModelArchitecture).configRefusals(engineName, { base: source.base.path }, generate)
      if (refusals.length > 0) return yield* new GenerateFailed({ reason: refusals.map((r) => r.reason).join("\n") })
    }
    const factor = source.onnx?.vaeScaleFactor ?? (yield* vaeScaleFactor(source.base.path))
    if (generate.resolution !== undefined && generate.resolution % factor !== 0) {
      return yield* usage(`--size ${generate.resolution}: must be a multiple of the VAE's scale factor ${factor}`)
    }
    const units = [...new Set(parsed.denormalise)] as ReadonlyArray<DenormalisedUnit>
    const normalisation = yield* normalisationOf(source, parsed)
    if (units.length > 0) {
      const problem = normalisation === undefined
        ? "a pipeline folder has no declared normalisation: give --db-window MIN,MAX or --mean-std MEAN,STD[,K]"
        : invertibleNormalisation(normalisation)
      if (problem !== undefined) return yield* usage(`--denormalise: ${problem}`)
    }

    const engine = yield* Engine
    const onnx = yield* OnnxEngine
    const io = yield* ImageIO
    const progress = yield* Progress
    const fs = yield* FileSystem.FileSystem
    const cannotWrite = (e: { readonly message: string }) => new GenerateFailed({ reason: `cannot write ${out}: ${e.message}` })
    const meter = yield* progress.begin("generate", `generate ${basename(out)}`)
    yield* fs.makeDirectory(dirname(out), { recursive: true }).pipe(Effect.mapError(cannotWrite))
    // Written next to --out under a temporary name, renamed when complete: an interrupted run leaves no output that looks finished.
    yield* writeFolderAtomic(out, (temporary) =>
      Effect.gen(function*() {
        const resolution = generate.resolution ?? 0
        if (engineName === "onnx") {
          // onnxSource made it: the manifest is there.
          const manifest = source.onnx ?? (yield* new GenerateFailed({ reason: `${source.base.path}: no ${onnxManifestFile}` }))
          yield* onnx.generate({ model: source.base.path, manifest, generate, resolution, outDir: temporary, progress: meter.update })
        } else {
          yield* engine.generate({
            base: source.base,
            adaptation: source.adaptation,
            generate,
            ...(source.modelDir === undefined ? {} : { modelDir: source.modelDir }),
            ...(files.length === 0 ? {} : { adapterFiles: files }),
            resolution,
            outDir: temporary,
            progress: meter.update,
            engine: engineName
          })
        }
        const samples = JSON.parse(yield* fs.readFileString(join(temporary, samplesIndexFile)).pipe(Effect.mapError(cannotWrite))) as Array<GeneratedSample>
        const settings = {
          source: source.description,
          engine: engineName,
          backend: engineName === "onnx"
            ? onnxBackendText(yield* onnx.runtime)
            : yield* (engine.backendOf === undefined ? engine.backend : engine.backendOf(engineName)),
          adapterFiles: yield* Effect.forEach(files, (f) => Effect.map(sha256(f.file), (digest) => ({ ...f, sha256: digest }))),
          generate: Schema.encodeSync(Generation)(generate),
          ...(normalisation === undefined ? {} : { normalisation }),
          command: ["sardine", ...process.argv.slice(2)]
        }
        const records = yield* Effect.forEach(samples, (sample) =>
          Effect.gen(function*() {
            const replicate = Number(/-r(\d+)\.tif$/.exec(sample.tiff)?.[1] ?? 0)
            const extra: Record<string, string> = {}
            for (const unit of units) {
              const raster = yield* io.read(join(temporary, sample.tiff))
              const file = sample.tiff.replace(/\.tif$/, `-${unit}.tif`)
              yield* io.writeFloatTiff(join(temporary, file), { ...raster, data: denormalise(raster.data, normalisation!, unit) })
              extra[unit === "db" ? "dbTiff" : "amplitudeTiff"] = file
            }
            return { ...sample, replicate, ...extra, settings }
          }))
        yield* fs.writeFileString(join(temporary, samplesIndexFile), `${JSON.stringify(records, null, 2)}\n`).pipe(Effect.mapError(cannotWrite))
        return records.length
      }), { replace: true }).pipe(
        Effect.catchTags({ SystemError: (e) => Effect.fail(cannotWrite(e)), BadArgument: (e) => Effect.fail(cannotWrite(e)) }),
        Effect.flatMap((written) =>
          Effect.zipRight(
            progress.end("generate", "done"),
            Console.log(`wrote ${written} sample${written === 1 ? "" : "s"} to ${out} (samples.json lists every setting)`)
          )
        )
      )
  })).pipe(
    Command.withDescription(
      "Generate images from an experiment's trained model (found whichever engine made it; --engine picks one when both did; its base, for a baseline), from a diffusers pipeline folder, from a folder plus LoRA / " +
        "textual-inversion files, or from an ONNX export folder (sardine export --format onnx) on onnxruntime-node with --engine onnx: float32 TIFF + PNG per sample and samples.json with every setting; the same command gives the same files."
    )
  )
