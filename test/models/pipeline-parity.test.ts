import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { autoencoderKlDecode, autoencoderKlEncode } from "../../adapters/tfjs/autoencoder-kl.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { ADDED_TOKEN_EMBEDDING, clipTextModel } from "../../adapters/tfjs/clip-text-model.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type LoadedTextEncoder, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { encodePromptSd, encodePromptSdxl, sdxlTimeIds, type TextEncoder } from "../../adapters/tfjs/prompt-encoding.ts"
import { unet2dCondition } from "../../adapters/tfjs/unet2d-condition.ts"
import { expectClose, get, idRows, nhwc, readReference, type ReferenceTensor } from "./reference.ts"

const FIXTURES = "test/fixtures/pipelines"
const PROMPTS = ["a sar image of a harbour, 3 ships & a breakwater!", "<SAR> flooded fields near the river"]

/** Adds <SAR> the way textual inversion does: a tokenizer id after the vocabulary and the reference's embedding row. */
const withSarToken = (encoder: LoadedTextEncoder, row: ReferenceTensor): TextEncoder => {
  encoder.parameters.set(ADDED_TOKEN_EMBEDDING, tf.tensor2d(row.data as Float32Array, [1, row.shape[1]!]))
  return { plan: encoder.plan, layers: layersOf(encoder.parameters), tokenizer: encoder.tokenizer.addTokens(["<SAR>"]) }
}

/** Runs `body` and checks that it leaves exactly `kept` more tensors than before (its results). */
const countingTensors = <T>(kept: number, body: () => T): T => {
  const before = tf.memory().numTensors
  const result = body()
  expect(tf.memory().numTensors - before, "tensors left behind").toBe(kept)
  return result
}

describe.each(["cpu", "wasm"])("parity with diffusers / transformers on the %s backend", (backend) => {
  let sd1: StableDiffusionPipeline
  let sdxl: StableDiffusionPipeline
  let ref1: Map<string, ReferenceTensor>
  let refXl: Map<string, ReferenceTensor>

  beforeAll(async () => {
    await Effect.runPromise(selectBackend(backend))
    sd1 = await Effect.runPromise(loadPipeline(`${FIXTURES}/sd1-tiny`))
    sdxl = await Effect.runPromise(loadPipeline(`${FIXTURES}/sdxl-tiny`))
    ref1 = await readReference(`${FIXTURES}/sd1-tiny.reference.safetensors`)
    refXl = await readReference(`${FIXTURES}/sdxl-tiny.reference.safetensors`)
  })
  afterAll(() => {
    disposePipeline(sd1)
    disposePipeline(sdxl)
  })

  it("loads both pipelines as the right family", () => {
    expect(tf.getBackend()).toBe(backend)
    expect([sd1.family, sdxl.family]).toEqual(["sd", "sdxl"])
    expect(sdxl.textEncoders.map((e) => [e.name, e.plan.withProjection])).toEqual([["text_encoder", false], ["text_encoder_2", true]])
    expect([sd1.vae.plan.config.scaling_factor, sdxl.vae.plan.config.scaling_factor]).toEqual([0.18215, 0.13025])
    expect(sdxl.scheduler.className).toBe("EulerDiscreteScheduler")
  })

  it("SD-1 UNet (conv projections) predicts the reference noise", () => {
    const sample = nhwc(get(ref1, "unet.sample"))
    const context = tf.tensor3d(get(ref1, "prompt.prompt_embeds").data as Float32Array, [2, 77, 16])
    const timesteps = Array.from(get(ref1, "unet.timesteps").data)
    const out = countingTensors(1, () => unet2dCondition(sd1.unet.plan, layersOf(sd1.unet.parameters), { sample, timesteps, encoderHiddenStates: context }))
    expectClose(out, get(ref1, "unet.output"), "unet.output", "nhwc")
    tf.dispose([sample, context, out])
  })

  it("SDXL UNet (linear projections, text_time, odd latent size) predicts the reference noise", () => {
    const sample = nhwc(get(refXl, "unet.sample"))
    const context = tf.tensor3d(get(refXl, "prompt.prompt_embeds").data as Float32Array, [2, 77, 24])
    const textEmbeds = tf.tensor2d(get(refXl, "prompt.pooled_prompt_embeds").data as Float32Array, [2, 12])
    const ids = get(refXl, "unet.time_ids")
    const timeIds = [Array.from(ids.data.subarray(0, 6)), Array.from(ids.data.subarray(6, 12))]
    const out = countingTensors(1, () =>
      unet2dCondition(sdxl.unet.plan, layersOf(sdxl.unet.parameters), {
        sample,
        timesteps: Array.from(get(refXl, "unet.timesteps").data),
        encoderHiddenStates: context,
        textTime: { textEmbeds, timeIds }
      }))
    expectClose(out, get(refXl, "unet.output"), "unet.output", "nhwc")
    tf.dispose([sample, context, textEmbeds, out])
  })

  it.each([["sd1-tiny"], ["sdxl-tiny"]])("%s VAE encodes to the reference mean / log-variance and decodes the mean", (name) => {
    const [pipeline, reference] = name === "sd1-tiny" ? [sd1, ref1] : [sdxl, refXl]
    const layers = layersOf(pipeline.vae.parameters)
    const image = nhwc(get(reference, "vae.image"))
    const latent = countingTensors(2, () => autoencoderKlEncode(pipeline.vae.plan, layers, image))
    expectClose(latent.mean, get(reference, "vae.latent_mean"), "latent mean", "nhwc")
    expectClose(latent.logvar, get(reference, "vae.latent_logvar"), "latent logvar", "nhwc")
    const decoded = countingTensors(1, () => autoencoderKlDecode(pipeline.vae.plan, layers, latent.mean))
    expectClose(decoded, get(reference, "vae.decoded"), "decoded", "nhwc")
    tf.dispose([image, latent.mean, latent.logvar, decoded])
  })

  it.each([
    ["sd1-tiny", "text_encoder"],
    ["sdxl-tiny", "text_encoder"],
    ["sdxl-tiny", "text_encoder_2"]
  ])("%s %s gives the reference hidden states and pooled output, with <SAR> learned", (name, encoderName) => {
    const [pipeline, reference] = name === "sd1-tiny" ? [sd1, ref1] : [sdxl, refXl]
    const loaded = pipeline.textEncoders.find((e) => e.name === encoderName)!
    const encoder = withSarToken(loaded, get(reference, `${encoderName}.added_token_embedding`))
    const ids = PROMPTS.map((p) => encoder.tokenizer.encode(p))
    expect(ids.map((row) => Array.from(row))).toEqual(idRows(get(reference, `${encoderName}.input_ids`)).map((row) => Array.from(row)))
    const out = countingTensors(encoder.plan.withProjection ? 4 : 3, () => clipTextModel(encoder.plan, encoder.layers, ids))
    expectClose(out.lastHiddenState, get(reference, `${encoderName}.last_hidden_state`), "last_hidden_state")
    expectClose(out.penultimateHiddenState, get(reference, `${encoderName}.penultimate_hidden_state`), "hidden_states[-2]")
    if (encoder.plan.withProjection) expectClose(out.textEmbeds!, get(reference, `${encoderName}.text_embeds`), "text_embeds")
    else expectClose(out.pooledOutput, get(reference, `${encoderName}.pooler_output`), "pooler_output")
    tf.dispose([out.lastHiddenState, out.penultimateHiddenState, out.pooledOutput, ...(out.textEmbeds ? [out.textEmbeds] : [])])
    loaded.parameters.get(ADDED_TOKEN_EMBEDDING)!.dispose()
    loaded.parameters.delete(ADDED_TOKEN_EMBEDDING)
  })

  it("encodes SD-1 prompts as StableDiffusionPipeline.encode_prompt", () => {
    const encoder = withSarToken(sd1.textEncoders[0]!, get(ref1, "text_encoder.added_token_embedding"))
    const embeds = countingTensors(1, () => encodePromptSd(encoder, PROMPTS))
    expectClose(embeds, get(ref1, "prompt.prompt_embeds"), "prompt_embeds")
    embeds.dispose()
    sd1.textEncoders[0]!.parameters.get(ADDED_TOKEN_EMBEDDING)!.dispose()
    sd1.textEncoders[0]!.parameters.delete(ADDED_TOKEN_EMBEDDING)
  })

  it("encodes SDXL prompts as StableDiffusionXLPipeline.encode_prompt, with its time ids", () => {
    const encoders = sdxl.textEncoders.map((e) => withSarToken(e, get(refXl, `${e.name}.added_token_embedding`)))
    const out = countingTensors(2, () => encodePromptSdxl(encoders, PROMPTS))
    expectClose(out.promptEmbeds, get(refXl, "prompt.prompt_embeds"), "prompt_embeds")
    expectClose(out.pooledPromptEmbeds, get(refXl, "prompt.pooled_prompt_embeds"), "pooled_prompt_embeds")
    const timeIds = sdxlTimeIds(sdxl.unet.plan, encoders[1]!.plan, { originalSize: [24, 40], cropTopLeft: [0, 0], targetSize: [24, 40] })
    expect(timeIds).toEqual(Array.from(get(refXl, "prompt.add_time_ids").data))
    tf.dispose([out.promptEmbeds, out.pooledPromptEmbeds])
    for (const e of sdxl.textEncoders) {
      e.parameters.get(ADDED_TOKEN_EMBEDDING)!.dispose()
      e.parameters.delete(ADDED_TOKEN_EMBEDDING)
    }
  })
})
