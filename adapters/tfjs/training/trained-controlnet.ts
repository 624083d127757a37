import * as tf from "@tensorflow/tfjs-core"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { Effect } from "effect"
import { join } from "node:path"
import type { ResolvedControlNet } from "../../../framework/declaration/adaptation.ts"
import type { PreparedConditioning } from "../../../framework/steps/prepared-dataset.ts"
import { writeFileAtomic } from "../../../framework/files/atomic-write.ts"
import { writeFolderAtomically } from "../../files/atomic-write-node.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { saveParameters } from "../checkpoint.ts"
import { controlNetConfigFromUnet, controlNetConfigJson, controlNetFromUnet, controlNetSpecs, type ControlNetPlan, planControlNet } from "../controlnet.ts"
import type { ModelConfigError } from "../model-config.ts"
import { type LoadedModel, loadControlNet, type LoadError, type StableDiffusionPipeline } from "../pipeline-loader.ts"
import { DataFolderError } from "./index-files.ts"
import { type LoraWeights, mergedWeight } from "./lora.ts"
import { TreatmentError } from "./trainable-model.ts"
import { fileProblem } from "../../../framework/files/file-errors.ts"

/**
 * The ControlNet a conditioned experiment trains: made as diffusers' `ControlNetModel.from_unet` makes
 * it from the base's UNet (init "unet"), or loaded from a diffusers ControlNet folder; and written back
 * as a diffusers ControlNet folder (`controlnet/` of the trained model, LoRA merged), which
 * `ControlNetModel.from_pretrained` loads and the generate step samples with.
 */

/** The folder of a trained model that holds its ControlNet (its EMA's in `controlnet-ema/`). */
export const CONTROLNET_FOLDER = "controlnet"
export const CONTROLNET_EMA_FOLDER = "controlnet-ema"

/** diffusers' default conditioning_embedding_out_channels. */
const DIFFUSERS_EMBEDDING = [16, 32, 96, 256]

/**
 * The embedding's widths: declared, or diffusers' default cut to one stage more than the VAE halves
 * (the conditioning image has the SAR image's size, 2^halvings × the latents).
 */
export const embeddingWidths = (controlnet: ResolvedControlNet, pipeline: StableDiffusionPipeline): ReadonlyArray<number> => {
  const stages = pipeline.vae.plan.config.block_out_channels.length
  if (controlnet.embedding !== undefined) {
    if (controlnet.embedding.length !== stages) {
      throw new TreatmentError({
        reason: `conditioning.embedding: lists ${controlnet.embedding.length} widths, but the base's VAE halves the image ${
          stages - 1
        } times, so the conditioning embedding needs ${stages} stages (one more than the halvings)`
      })
    }
    return controlnet.embedding
  }
  if (stages > DIFFUSERS_EMBEDDING.length) {
    throw new TreatmentError({
      reason: `conditioning.embedding: the base's VAE halves the image ${
        stages - 1
      } times, more than diffusers' default embedding covers; declare ${stages} widths`
    })
  }
  return DIFFUSERS_EMBEDDING.slice(0, stages)
}

/** The channels of the prepared conditioning images, or the error naming the data folder. */
const conditionChannels = (conditioning: PreparedConditioning | undefined, dataDir: string) =>
  conditioning === undefined
    ? Effect.fail(new DataFolderError({ file: join(dataDir, "index.json"), reason: "holds no conditioning images, but the experiment trains a ControlNet" }))
    : Effect.succeed(conditioning.channels)

/**
 * The ControlNet training starts from (its parameters owned by the caller): from the UNet of `pipeline`,
 * which must not have been trained yet, with `seed` drawing the embedding's convolutions; or `folder`.
 */
export const initialControlNet = (
  pipeline: StableDiffusionPipeline,
  controlnet: ResolvedControlNet,
  folder: string | undefined,
  data: { readonly dir: string; readonly conditioning: PreparedConditioning | undefined },
  seed: number
): Effect.Effect<LoadedModel<ControlNetPlan>, TreatmentError | DataFolderError | LoadError | ModelConfigError> =>
  Effect.gen(function*() {
    const channels = yield* conditionChannels(data.conditioning, data.dir)
    const halvings = pipeline.vae.plan.config.block_out_channels.length - 1
    let model: LoadedModel<ControlNetPlan>
    if (controlnet.init === "unet") {
      const widths = yield* Effect.try({ try: () => embeddingWidths(controlnet, pipeline), catch: (e) => e as TreatmentError })
      const unetFile = join(pipeline.folder, "unet", "config.json")
      const config = yield* controlNetConfigFromUnet(pipeline.unet.plan.config, unetFile, {
        conditioningChannels: channels,
        conditioningEmbeddingOutChannels: widths
      })
      const plan = yield* planControlNet(config, unetFile)
      model = { folder: pipeline.folder, plan, specs: controlNetSpecs(plan), parameters: controlNetFromUnet(plan, pipeline.unet.parameters, seed) }
    } else {
      if (folder === undefined) {
        return yield* new TreatmentError({ reason: `conditioning.init: the folder "${controlnet.init}" was not resolved by the caller` })
      }
      model = yield* loadControlNet(folder)
    }
    const { config, conditioningScaleFactor } = model.plan
    const problem = config.conditioning_channels !== channels
      ? `takes ${config.conditioning_channels}-channel conditioning images, the prepared ones have ${channels}`
      : conditioningScaleFactor !== 2 ** halvings
      ? `embeds conditioning images ${conditioningScaleFactor} × the latents, but the base's VAE makes latents ${2 ** halvings} × smaller than the images`
      : undefined
    if (problem !== undefined) {
      tf.dispose([...model.parameters.values()])
      return yield* new TreatmentError({
        reason: `conditioning.init: the ControlNet ${controlnet.init === "unet" ? "made from the UNet" : model.folder} ${problem}`
      })
    }
    return model
  })

/**
 * Writes `model` (its parameters replaced by `values` where given, LoRA `adapters` merged at `scale`) as a
 * diffusers ControlNet folder `out`: config.json and diffusion_pytorch_model.safetensors, under a temporary
 * name renamed when complete (a folder already at `out` is replaced).
 */
export const writeControlNetFolder = (
  out: string,
  model: LoadedModel<ControlNetPlan>,
  values: (name: string) => tf.Tensor | undefined,
  lora: { readonly adapters: ReadonlyMap<string, LoraWeights>; readonly scale: number } | undefined
): Effect.Effect<void, SafetensorsError | DataFolderError> =>
  Effect.gen(function*() {
    const created: Array<tf.Tensor> = []
    const parameters = new Map([...model.parameters].map(([name, tensor]) => [name, values(name) ?? tensor]))
    for (const [module, weights] of lora?.adapters ?? []) {
      const merged = mergedWeight(parameters.get(`${module}.weight`)!, weights, lora!.scale)
      created.push(merged)
      parameters.set(`${module}.weight`, merged)
    }
    const fsError = (what: string) => (e: PlatformError) => new DataFolderError({ file: out, reason: `${what}: ${fileProblem(e)}`, cause: e })
    yield* writeFolderAtomically(out, (temporary) =>
      Effect.zipRight(
        writeFileAtomic(join(temporary, "config.json"), controlNetConfigJson(model.plan.config)).pipe(
          Effect.mapError(fsError("cannot write the ControlNet's config"))
        ),
        saveParameters(join(temporary, "diffusion_pytorch_model.safetensors"), model.specs, parameters)
      ), { replace: true }).pipe(
        Effect.mapError((e) => isPlatformError(e) ? fsError("cannot move the ControlNet folder in place")(e) : e),
        Effect.ensuring(Effect.sync(() => tf.dispose(created)))
      )
  })
