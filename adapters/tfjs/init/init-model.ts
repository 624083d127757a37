import { FileSystem } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { Effect, Schema } from "effect"
import { basename, join, relative } from "node:path"
import type { ModelFamily } from "../../../framework/declaration/base-model.ts"
import { hashString, SeededRandom } from "../../data/seeded-random.ts"
import { writeFolderAtomically } from "../../files/atomic-write-node.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { writeSafetensors } from "../../safetensors/safetensors-writer.ts"
import { loadClipTokenizer, type TokenizerError } from "../../tokenizer/tokenizer-files.ts"
import { autoencoderKlSpecs, decodeAutoencoderKlConfig } from "../autoencoder-kl.ts"
import { clipTextSpecs, decodeClipTextConfig } from "../clip-text-model.ts"
import type { ParameterSpec } from "../layers.ts"
import { pathExists, withNodeFileSystem } from "../node-file-system.ts"
import { type ModelConfigError, readJsonFile } from "../model-config.ts"
import { decodeNoiseSchedule } from "../schedulers/noise-schedule.ts"
import { decodeUnet2DConditionConfig, unet2dConditionSpecs } from "../unet2d-condition.ts"
import { clipTextInitialisation, type Initialisation, torchDefaultInitialisation } from "./parameter-initialisation.ts"
import { fileProblem } from "../../../framework/files/file-errors.ts"

/**
 * A diffusers pipeline with freshly initialised weights, from an architecture folder (model_index.json,
 * each component's config.json, the scheduler config, the tokenizer files; no weights), as
 * `from_config` would build each model in diffusers / transformers. Every tensor draws from its own
 * stream keyed by (seed, component, parameter name), so the same seed gives the same bytes and
 * growing one component leaves the others' draws unchanged. The folder appears only when complete.
 */

/** An architecture folder sardine cannot build a pipeline from; names the file and the rule. */
export class InitModelError extends Schema.TaggedError<InitModelError>()("InitModelError", {
  file: Schema.String,
  reason: Schema.String,
  /** The failure of the file operation, when one failed. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export interface InitModelRun {
  readonly architecture: string
  readonly family: ModelFamily
  readonly seed: number
  /** The pipeline folder to create (must not exist). */
  readonly out: string
}

export type InitModelFailure = InitModelError | ModelConfigError | TokenizerError | SafetensorsError

const WEIGHT_FILE = /\.(safetensors|bin|ckpt|pt|pth|onnx)$/

const TEXT_ENCODER_CLASSES: Record<string, boolean> = { CLIPTextModel: false, CLIPTextModelWithProjection: true }

/** One component's parameters with the rule each is drawn by. */
interface ComponentWeights {
  readonly component: string
  readonly file: string
  readonly specs: ReadonlyArray<ParameterSpec>
  readonly rules: ReadonlyMap<string, Initialisation>
}

const draw = (rule: Initialisation, count: number, random: SeededRandom): Float32Array => {
  const out = new Float32Array(count)
  switch (rule.kind) {
    case "constant":
      return out.fill(rule.value)
    case "uniform":
      for (let i = 0; i < count; i++) out[i] = rule.bound * (2 * random.uniform() - 1)
      return out
    case "normal":
      for (let i = 0; i < count; i++) out[i] = rule.std * random.normal()
      return out
  }
}

/** The values of one parameter (torch layout; every draw is independent, so layout does not matter). */
export const initialValues = (seed: number, component: string, spec: ParameterSpec, rule: Initialisation): Float32Array =>
  draw(rule, spec.shape.reduce((a, b) => a * b, 1), new SeededRandom(seed, hashString(component), hashString(spec.name)))

const componentClass = (index: Record<string, unknown>, name: string): string | undefined => {
  const entry = index[name]
  return Array.isArray(entry) && typeof entry[1] === "string" ? entry[1] : undefined
}

/** What each component of the architecture is, checked against the declared family. */
const readComponents = (architecture: string, family: ModelFamily) =>
  Effect.gen(function*() {
    const indexFile = join(architecture, "model_index.json")
    const json = yield* readJsonFile(indexFile)
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return yield* new InitModelError({ file: indexFile, reason: "is not a JSON object" })
    }
    const index = json as Record<string, unknown>
    const expect = (name: string, classes: ReadonlyArray<string>) => {
      const cls = componentClass(index, name)
      return cls !== undefined && classes.includes(cls)
        ? Effect.succeed(cls)
        : Effect.fail(
          new InitModelError({
            file: indexFile,
            reason: `component "${name}" is ${JSON.stringify(index[name] ?? null)}; sardine builds ${classes.join(" or ")}`
          })
        )
    }
    yield* expect("unet", ["UNet2DConditionModel"])
    yield* expect("vae", ["AutoencoderKL"])
    if (componentClass(index, "scheduler") === undefined) return yield* new InitModelError({ file: indexFile, reason: "names no scheduler" })
    const encoders = family === "sdxl" ? ["text_encoder", "text_encoder_2"] : ["text_encoder"]
    const extra = ["text_encoder", "text_encoder_2"].filter((name) => !encoders.includes(name) && componentClass(index, name) !== undefined)
    if (extra.length > 0) {
      return yield* new InitModelError({ file: indexFile, reason: `names ${extra.join(", ")}, which a "${family}" base does not have` })
    }
    const textEncoders = yield* Effect.forEach(encoders, (name) =>
      Effect.gen(function*() {
        const cls = yield* expect(name, Object.keys(TEXT_ENCODER_CLASSES))
        const tokenizer = name.replace("text_encoder", "tokenizer")
        yield* expect(tokenizer, ["CLIPTokenizer", "CLIPTokenizerFast"])
        return { name, tokenizer, withProjection: TEXT_ENCODER_CLASSES[cls] === true }
      }))
    return { textEncoders }
  })

/** Every file of the architecture folder, refusing weights (a folder with weights is a `diffusers` base). */
const architectureFiles = (architecture: string) =>
  withNodeFileSystem((fs) => fs.readDirectory(architecture, { recursive: true })).pipe(
    Effect.mapError((e) => new InitModelError({ file: architecture, reason: `cannot list the architecture folder (${fileProblem(e)})`, cause: e })),
    Effect.flatMap((paths) => {
      const weights = paths.filter((path) => WEIGHT_FILE.test(basename(path)))
      return weights.length === 0
        ? Effect.void
        : Effect.fail(
          new InitModelError({
            file: join(architecture, weights[0]!),
            reason: "an architecture folder holds configs and tokenizer files, not weights; declare a folder with weights as diffusers(path)"
          })
        )
    })
  )

/** The parameters of every model component and how each is initialised. */
const plannedWeights = (architecture: string, textEncoders: ReadonlyArray<{ name: string; tokenizer: string; withProjection: boolean }>) =>
  Effect.gen(function*() {
    const configOf = (component: string) => {
      const file = join(architecture, component, "config.json")
      return Effect.map(readJsonFile(file), (json) => ({ file, json }))
    }
    const torchRules = (specs: ReadonlyArray<ParameterSpec>, file: string) =>
      Effect.try({ try: () => torchDefaultInitialisation(specs), catch: (e) => new InitModelError({ file, reason: (e as Error).message }) })

    const unetConfig = yield* configOf("unet")
    const unetSpecs = unet2dConditionSpecs(yield* decodeUnet2DConditionConfig(unetConfig.json, unetConfig.file))
    const vaeConfig = yield* configOf("vae")
    const vaeSpecs = autoencoderKlSpecs(yield* decodeAutoencoderKlConfig(vaeConfig.json, vaeConfig.file))
    const weights: Array<ComponentWeights> = [
      { component: "unet", file: "diffusion_pytorch_model.safetensors", specs: unetSpecs, rules: yield* torchRules(unetSpecs, unetConfig.file) },
      { component: "vae", file: "diffusion_pytorch_model.safetensors", specs: vaeSpecs, rules: yield* torchRules(vaeSpecs, vaeConfig.file) }
    ]
    for (const encoder of textEncoders) {
      const { file, json } = yield* configOf(encoder.name)
      const plan = yield* decodeClipTextConfig(json, file, encoder.withProjection)
      const tokenizer = yield* loadClipTokenizer(join(architecture, encoder.tokenizer))
      if (tokenizer.size > plan.config.vocab_size) {
        return yield* new InitModelError({
          file,
          reason: `vocab_size ${plan.config.vocab_size} is smaller than the ${tokenizer.size} ids of ${encoder.tokenizer}/`
        })
      }
      if (tokenizer.maxLength > plan.config.max_position_embeddings) {
        return yield* new InitModelError({
          file,
          reason: `max_position_embeddings ${plan.config.max_position_embeddings} is below the tokenizer's model_max_length ${tokenizer.maxLength}`
        })
      }
      const factor = (json as { initializer_factor?: unknown }).initializer_factor
      if (factor !== undefined && (typeof factor !== "number" || !(factor > 0))) {
        return yield* new InitModelError({ file, reason: `initializer_factor ${JSON.stringify(factor)} is not a positive number` })
      }
      const specs = clipTextSpecs(plan)
      const rules = yield* Effect.try({
        try: () =>
          clipTextInitialisation(specs, {
            hiddenSize: plan.config.hidden_size,
            numHiddenLayers: plan.config.num_hidden_layers,
            factor: (factor as number | undefined) ?? 1
          }),
        catch: (e) => new InitModelError({ file, reason: (e as Error).message })
      })
      weights.push({ component: encoder.name, file: "model.safetensors", specs, rules })
    }
    const schedulerFile = join(architecture, "scheduler", "scheduler_config.json")
    yield* decodeNoiseSchedule(yield* readJsonFile(schedulerFile), schedulerFile)
    return weights
  })

/** Writes a new pipeline folder at `run.out` with seeded initial weights for the architecture's configs. */
export const initModel = (run: InitModelRun): Effect.Effect<void, InitModelFailure> =>
  Effect.gen(function*() {
    const fsFailure = (what: string) => (e: PlatformError) => new InitModelError({ file: run.out, reason: `${what}: ${fileProblem(e)}`, cause: e })
    if (yield* pathExists(run.out).pipe(Effect.mapError(fsFailure("cannot look at it")))) {
      return yield* new InitModelError({ file: run.out, reason: "already exists; init-model writes a new folder" })
    }
    const { textEncoders } = yield* readComponents(run.architecture, run.family)
    yield* architectureFiles(run.architecture)
    const weights = yield* plannedWeights(run.architecture, textEncoders)
    yield* writeFolderAtomically(run.out, (temporary) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.copy(run.architecture, temporary).pipe(
          Effect.mapError(fsFailure(`cannot copy ${relative(process.cwd(), run.architecture) || run.architecture}`))
        )
        for (const w of weights) {
          yield* writeSafetensors(
            join(temporary, w.component, w.file),
            w.specs.map((spec) => ({
              name: spec.name,
              dtype: "F32" as const,
              shape: spec.shape,
              data: () => initialValues(run.seed, w.component, spec, w.rules.get(spec.name)!)
            })),
            { format: "pt" }
          )
        }
      })).pipe(Effect.mapError((e) => isPlatformError(e) ? fsFailure("cannot move the pipeline into place")(e) : e))
  })
