import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { exportModel } from "../../adapters/tfjs/export/export-model.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { encodePromptSdxl, type TextEncoder } from "../../adapters/tfjs/prompt-encoding.ts"
import { adaptedPipeline, type Adaptation } from "../../adapters/tfjs/training/adapted-pipeline.ts"
import { spellOutToken } from "../../adapters/tfjs/training/learned-token.ts"
import { disposeAdaptation } from "../../adapters/tfjs/training/trainable-model.ts"
import { applyTrainedModel } from "../../adapters/tfjs/training/trained-model-files.ts"
import { prepareBackendForTraining } from "../../adapters/tfjs/training/trainer.ts"
import { unet2dCondition, type Unet2DConditionInputs } from "../../adapters/tfjs/unet2d-condition.ts"
import { expectClose, get, nhwc, readReference, type ReferenceTensor } from "../models/reference.ts"
import { readWeights, temporaryFolder } from "../training/training-run.ts"

/**
 * sardine's exports loaded by the reference library (tools/make_training_goldens.py): diffusers'
 * load_lora_weights of the kohya and PEFT files and load_textual_inversion of the embedding give the
 * outputs sardine computes with the same trained model, adapted in place and merged into a pipeline.
 */

const BASE = "test/fixtures/pipelines/sdxl-tiny"
const FIXTURE = "test/fixtures/training"
const MODEL = `${FIXTURE}/lora-token-model`
const PROMPT = "a sar image of a harbour with ships"
const TOKEN_PROMPT = "<SAR> image of a harbour with ships"

const unetInputs = (reference: ReadonlyMap<string, ReferenceTensor>): Unet2DConditionInputs => {
  const ids = get(reference, "unet.time_ids").data
  return {
    sample: nhwc(get(reference, "unet.sample")),
    timesteps: Array.from(get(reference, "unet.timesteps").data),
    encoderHiddenStates: tf.tensor3d(get(reference, "unet.encoder_hidden_states").data as Float32Array, [2, 77, 24]),
    textTime: {
      textEmbeds: tf.tensor2d(get(reference, "unet.text_embeds").data as Float32Array, [2, 12]),
      timeIds: [Array.from(ids.subarray(0, 6)), Array.from(ids.subarray(6, 12))]
    }
  }
}

const disposeInputs = (inputs: Unet2DConditionInputs) => tf.dispose([inputs.sample, inputs.encoderHiddenStates, inputs.textTime!.textEmbeds])

const expectPrompt = (encoders: ReadonlyArray<TextEncoder>, prompt: string, reference: ReadonlyMap<string, ReferenceTensor>, name: string) => {
  const { promptEmbeds, pooledPromptEmbeds } = encodePromptSdxl(encoders, [prompt])
  expectClose(promptEmbeds, get(reference, `prompt.${name}.prompt_embeds`), `${name} prompt embeddings`)
  expectClose(pooledPromptEmbeds, get(reference, `prompt.${name}.pooled`), `${name} pooled embedding`)
  tf.dispose([promptEmbeds, pooledPromptEmbeds])
}

/** max |a − b| over the reference scale: how far two reference outputs are apart. */
const apart = (a: ReferenceTensor, b: ReferenceTensor) => {
  let scale = 0
  let worst = 0
  for (let i = 0; i < a.data.length; i++) {
    scale = Math.max(scale, Math.abs(b.data[i]))
    worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]))
  }
  return worst / scale
}

describe("exports: files other tools load", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  beforeAll(async () => {
    folder = await temporaryFolder("export")
  })
  afterAll(() => folder.remove())

  it.each(["kohya", "peft", "embedding"] as const)("exporting the fixture model as %s writes the files the goldens were made from", async (format) => {
    const out = join(folder.dir, `${format}.safetensors`)
    await Effect.runPromise(exportModel({ base: BASE, modelDir: MODEL, format, out, useEma: true }))
    const ours = await readWeights(out)
    const checkedIn = await readWeights(`${FIXTURE}/exported/${format}.safetensors`)
    expect([...ours.keys()].sort()).toEqual([...checkedIn.keys()].sort())
    for (const [name, t] of checkedIn) expect(Array.from(ours.get(name)!.data), name).toEqual(Array.from(t.data))
    const header = await Effect.runPromise(Effect.scoped(Effect.map(openSafetensors(out), (r) => r.header)))
    if (format === "kohya") {
      expect([...ours.keys()].some((k) => k.startsWith("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down"))).toBe(true)
      expect([...ours.keys()].some((k) => k.startsWith("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0.alpha"))).toBe(true)
    }
    if (format === "peft") expect(JSON.parse(header.metadata.lora_adapter_metadata)["unet.lora_alpha"]).toBe(4)
    if (format === "embedding") expect([...ours.keys()].sort()).toEqual(["clip_g", "clip_l"])
  })

  it("an existing --out folder is refused for the merged pipeline, a folder for a LoRA file", async () => {
    await expect(Effect.runPromise(exportModel({ base: BASE, modelDir: MODEL, format: "diffusers", out: folder.dir, useEma: true })))
      .rejects.toThrow(/already exists/)
    await expect(Effect.runPromise(exportModel({ base: BASE, modelDir: MODEL, format: "kohya", out: folder.dir, useEma: true })))
      .rejects.toThrow(/is a folder/)
  })

  describe.each(["cpu", "wasm"])("on the %s backend", (backend) => {
    let reference: Map<string, ReferenceTensor>
    let pipeline: StableDiffusionPipeline
    let adaptation: Adaptation
    let merged: StableDiffusionPipeline
    beforeAll(async () => {
      await Effect.runPromise(selectBackend(backend))
      await Effect.runPromise(prepareBackendForTraining)
      reference = await readReference(`${FIXTURE}/reference.safetensors`)
      pipeline = await Effect.runPromise(loadPipeline(BASE))
      adaptation = (await Effect.runPromise(applyTrainedModel(pipeline, MODEL, { useEma: true }))).adaptation
      const out = join(folder.dir, `merged-${backend}`)
      await Effect.runPromise(exportModel({ base: BASE, modelDir: MODEL, format: "diffusers", out, useEma: true }))
      merged = await Effect.runPromise(loadPipeline(out))
    })
    afterAll(() => {
      disposeAdaptation(adaptation)
      disposePipeline(pipeline)
      disposePipeline(merged)
    })

    it("the LoRA really changes the UNet: diffusers' outputs with and without it are far apart", () => {
      expect(apart(get(reference, "unet.kohya_output"), get(reference, "unet.base_output"))).toBeGreaterThan(1e-2)
      expect(apart(get(reference, "prompt.kohya.prompt_embeds"), get(reference, "prompt.base.prompt_embeds"))).toBeGreaterThan(1e-2)
    })

    it.each(["kohya", "peft"])("the UNet with sardine's adapters, and sardine's merged pipeline, give diffusers' output after load_lora_weights(%s)", (kind) => {
      const inputs = unetInputs(reference)
      const view = adaptedPipeline(pipeline, adaptation)
      const adapted = unet2dCondition(pipeline.unet.plan, view.unet, inputs)
      expectClose(adapted, get(reference, `unet.${kind}_output`), `adapted UNet vs ${kind}`, "nhwc")
      const fromMerged = unet2dCondition(merged.unet.plan, layersOf(merged.unet.parameters), inputs)
      expectClose(fromMerged, get(reference, `unet.${kind}_output`), `merged UNet vs ${kind}`, "nhwc")
      tf.dispose([adapted, fromMerged])
      disposeInputs(inputs)
    })

    it.each(["kohya", "peft"])("both text encoders with their LoRA encode a prompt as diffusers does after load_lora_weights(%s)", (kind) => {
      const view = adaptedPipeline(pipeline, { components: adaptation.components })
      expectPrompt(view.textEncoders, PROMPT, reference, kind)
      const mergedEncoders = merged.textEncoders.map((e) => ({ plan: e.plan, layers: layersOf(e.parameters), tokenizer: e.tokenizer }))
      expectPrompt(mergedEncoders, PROMPT, reference, kind)
    })

    it("the learned token alone encodes as diffusers does after load_textual_inversion of clip_l and clip_g", () => {
      const view = adaptedPipeline(pipeline, { components: {}, ...(adaptation.token ? { token: adaptation.token } : {}) })
      const converted = view.convertPrompt(TOKEN_PROMPT)
      expect(converted).toBe("<SAR> <SAR>_1 image of a harbour with ships")
      expect(Array.from(view.textEncoders[0].tokenizer.encode(converted))).toEqual(Array.from(get(reference, "prompt.embedding.input_ids").data))
      expectPrompt(view.textEncoders, converted, reference, "embedding")
    })

    it("LoRA and token together, adapted and merged, encode as diffusers with both loaded", () => {
      const view = adaptedPipeline(pipeline, adaptation)
      expectPrompt(view.textEncoders, view.convertPrompt(TOKEN_PROMPT), reference, "kohya_embedding")
      const mergedEncoders = merged.textEncoders.map((e) => ({ plan: e.plan, layers: layersOf(e.parameters), tokenizer: e.tokenizer }))
      expectPrompt(mergedEncoders, spellOutToken(TOKEN_PROMPT, ["<SAR>", "<SAR>_1"]), reference, "kohya_embedding")
    })
  })
})
