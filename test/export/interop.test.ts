import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { SeededRandom } from "../../adapters/data/seeded-random.ts"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"
import { writeSafetensors } from "../../adapters/safetensors/safetensors-writer.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { exportModel } from "../../adapters/tfjs/export/export-model.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { encodePromptSdxl, type TextEncoder } from "../../adapters/tfjs/prompt-encoding.ts"
import { adaptedPipeline, type AdaptationTensors } from "../../adapters/tfjs/training/adapted-pipeline.ts"
import { disposeAdaptation } from "../../adapters/tfjs/training/trainable-model.ts"
import { applyTrainedModel } from "../../adapters/tfjs/training/trained-model-files.ts"
import { prepareBackendForTraining } from "../../adapters/tfjs/training/trainer.ts"
import { unet2dCondition, type Unet2DConditionInputs } from "../../adapters/tfjs/unet2d-condition.ts"
import { expectClose, get, readReference, type ReferenceTensor } from "../models/reference.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot } from "../support/run-process.ts"
import { readWeights, temporaryFolder } from "../training/training-run.ts"

/**
 * sardine's exports of a trained model (LoRA on the UNet and both text encoders, a 2-vector `<SAR>`) loaded
 * live by the pinned diffusers / transformers (test/export/load_exports.py): load_lora_weights of the kohya
 * and PEFT files, load_textual_inversion of the embedding, DiffusionPipeline.from_pretrained of the merged
 * pipeline. Their outputs must be sardine's with the same trained model, adapted in place and merged.
 * Cost: one Python process loading six tiny SDXL pipelines (≈ 15 s of CPU), the exports, two backends.
 */

const BASE = "test/fixtures/pipelines/sdxl-tiny"
const FIXTURE = "test/fixtures/training"
const MODEL = `${FIXTURE}/lora-token-model`
const PROMPT = "a sar image of a harbour with ships"
const TOKEN_PROMPT = "<SAR> image of a harbour with ships"
const SPELLED_PROMPT = "<SAR> <SAR>_1 image of a harbour with ships"

/** Fixed UNet inputs, N(0, 1) (torch layout, as the Python side reads them): 2 latents 8×8×4, SDXL conditioning. */
const INPUTS = (() => {
  const random = new SeededRandom(7)
  const values = (n: number) => Float32Array.from({ length: n }, () => random.normal())
  return {
    sample: { shape: [2, 4, 8, 8], data: values(2 * 4 * 8 * 8) },
    timesteps: { shape: [2], data: Float32Array.of(10, 500) },
    encoderHiddenStates: { shape: [2, 77, 24], data: values(2 * 77 * 24) },
    textEmbeds: { shape: [2, 12], data: values(2 * 12) },
    timeIds: { shape: [2, 6], data: Float32Array.of(32, 32, 0, 0, 32, 32, 32, 32, 0, 0, 32, 32) }
  }
})()

const unetInputs = (): Unet2DConditionInputs => ({
  sample: tf.tidy(() => tf.transpose(tf.tensor4d(INPUTS.sample.data, [2, 4, 8, 8]), [0, 2, 3, 1])) as tf.Tensor4D,
  timesteps: Array.from(INPUTS.timesteps.data),
  encoderHiddenStates: tf.tensor3d(INPUTS.encoderHiddenStates.data, [2, 77, 24]),
  textTime: {
    textEmbeds: tf.tensor2d(INPUTS.textEmbeds.data, [2, 12]),
    timeIds: [Array.from(INPUTS.timeIds.data.subarray(0, 6)), Array.from(INPUTS.timeIds.data.subarray(6, 12))]
  }
})

const disposeInputs = (inputs: Unet2DConditionInputs) => tf.dispose([inputs.sample, inputs.encoderHiddenStates, inputs.textTime!.textEmbeds])

const expectPrompt = (encoders: ReadonlyArray<TextEncoder>, prompt: string, live: ReadonlyMap<string, ReferenceTensor>, kind: string) => {
  const { promptEmbeds, pooledPromptEmbeds } = encodePromptSdxl(encoders, [prompt])
  expectClose(promptEmbeds, get(live, `prompt.${kind}.prompt_embeds`), `${kind} prompt embeddings`)
  expectClose(pooledPromptEmbeds, get(live, `prompt.${kind}.pooled`), `${kind} pooled embedding`)
  tf.dispose([promptEmbeds, pooledPromptEmbeds])
}

/** max |a − b| over the scale of b: how far two outputs are apart. */
const apart = (a: ReferenceTensor, b: ReferenceTensor) => {
  let scale = 0
  let worst = 0
  for (let i = 0; i < a.data.length; i++) {
    scale = Math.max(scale, Math.abs(b.data[i]!))
    worst = Math.max(worst, Math.abs(a.data[i]! - b.data[i]!))
  }
  return worst / scale
}

const header = (file: string) => Effect.runPromise(Effect.scoped(Effect.map(openSafetensors(file), (r) => r.header)))

describe("exports loaded by diffusers and transformers themselves", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let live: Map<string, ReferenceTensor>
  let converted: Record<string, string>
  beforeAll(async () => {
    folder = await temporaryFolder("interop")
    await Effect.runPromise(selectBackend("cpu"))
    for (const format of ["kohya", "peft", "embedding"] as const) {
      await Effect.runPromise(exportModel({ base: BASE, modelDir: MODEL, format, out: join(folder.dir, `${format}.safetensors`), useEma: true }))
    }
    await Effect.runPromise(exportModel({ base: BASE, modelDir: MODEL, format: "diffusers", out: join(folder.dir, "merged"), useEma: true }))
    const inputs = join(folder.dir, "inputs.safetensors")
    await Effect.runPromise(writeSafetensors(
      inputs,
      Object.entries({
        "unet.sample": INPUTS.sample,
        "unet.timesteps": INPUTS.timesteps,
        "unet.encoder_hidden_states": INPUTS.encoderHiddenStates,
        "unet.text_embeds": INPUTS.textEmbeds,
        "unet.time_ids": INPUTS.timeIds
      }).map(([name, t]) => ({ name, dtype: "F32" as const, shape: t.shape, data: t.data }))
    ))
    const out = join(folder.dir, "live.safetensors")
    await promisify(execFile)(referencePython(), [join(repoRoot, "test/export/load_exports.py"), BASE, folder.dir, inputs, out], {
      cwd: repoRoot,
      env: { ...process.env, OMP_NUM_THREADS: "1", HF_HUB_OFFLINE: "1" },
      maxBuffer: 1 << 24
    })
    live = await readReference(out)
    converted = JSON.parse((await header(out)).metadata.converted!) as Record<string, string>
  }, 600_000)
  afterAll(() => folder.remove())

  it.each(["kohya", "peft", "embedding"] as const)("the %s export is the checked-in file, bit for bit", async (format) => {
    const ours = await readWeights(join(folder.dir, `${format}.safetensors`))
    const checkedIn = await readWeights(`${FIXTURE}/exported/${format}.safetensors`)
    expect([...ours.keys()].sort()).toEqual([...checkedIn.keys()].sort())
    for (const [name, t] of checkedIn) expect(Array.from(ours.get(name)!.data), name).toEqual(Array.from(t.data))
    if (format === "kohya") {
      expect([...ours.keys()].some((k) => k.startsWith("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down"))).toBe(true)
      expect([...ours.keys()].some((k) => k.startsWith("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0.alpha"))).toBe(true)
    }
    if (format === "embedding") expect([...ours.keys()].sort()).toEqual(["clip_g", "clip_l"])
  })

  it("kohya metadata claims one rank and alpha only when every component has them: the UNet's alpha 4 and the encoders' 2 are Dynamic", async () => {
    const { metadata } = await header(join(folder.dir, "kohya.safetensors"))
    expect([metadata.ss_network_dim, metadata.ss_network_alpha]).toEqual(["2", "Dynamic"])
    const alphas = await readWeights(join(folder.dir, "kohya.safetensors"))
    expect(alphas.get("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.alpha")!.data[0]).toBe(4)
    expect(alphas.get("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.alpha")!.data[0]).toBe(2)
    expect(JSON.parse((await header(join(folder.dir, "peft.safetensors"))).metadata.lora_adapter_metadata!)["unet.lora_alpha"]).toBe(4)
  })

  it("the merged pipeline's text encoder configs are the base's, number literals and all, but for vocab_size", async () => {
    for (const encoder of ["text_encoder", "text_encoder_2"]) {
      const base = await readFile(join(BASE, encoder, "config.json"), "utf8")
      const merged = await readFile(join(folder.dir, "merged", encoder, "config.json"), "utf8")
      expect(base).toContain("\"initializer_factor\": 1.0")
      const vocab = (JSON.parse(base) as { vocab_size: number }).vocab_size
      expect(merged).toBe(base.replace(`"vocab_size": ${vocab}`, `"vocab_size": ${vocab + 2}`))
    }
  })

  it("diffusers expands the token of the merged pipeline to its two vectors by itself, not after load_textual_inversion", () => {
    expect(converted.merged).toBe(SPELLED_PROMPT)
    expect(converted.embedding).toBe(TOKEN_PROMPT)
  })

  describe.each(["cpu", "wasm"])("on the %s backend", (backend) => {
    let pipeline: StableDiffusionPipeline
    let tensors: AdaptationTensors
    let merged: StableDiffusionPipeline
    beforeAll(async () => {
      await Effect.runPromise(selectBackend(backend))
      await Effect.runPromise(prepareBackendForTraining)
      pipeline = await Effect.runPromise(loadPipeline(BASE))
      tensors = (await Effect.runPromise(applyTrainedModel(pipeline, MODEL, { useEma: true }))).tensors
      merged = await Effect.runPromise(loadPipeline(join(folder.dir, "merged")))
    })
    afterAll(() => {
      disposeAdaptation(tensors)
      disposePipeline(pipeline)
      disposePipeline(merged)
    })

    it("the LoRA really changes the UNet and the prompt embeddings in diffusers", () => {
      expect(apart(get(live, "unet.kohya"), get(live, "unet.base"))).toBeGreaterThan(1e-2)
      expect(apart(get(live, "prompt.kohya.prompt_embeds"), get(live, "prompt.base.prompt_embeds"))).toBeGreaterThan(1e-2)
    })

    it.each(["kohya", "peft", "merged"])("the UNet with sardine's adapters, and sardine's merged pipeline, give diffusers' UNet of %s", (kind) => {
      const inputs = unetInputs()
      const adapted = unet2dCondition(pipeline.unet.plan, adaptedPipeline(pipeline, tensors).unet, inputs)
      expectClose(adapted, get(live, `unet.${kind}`), `adapted UNet vs ${kind}`, "nhwc")
      const fromMerged = unet2dCondition(merged.unet.plan, layersOf(merged.unet.parameters), inputs)
      expectClose(fromMerged, get(live, `unet.${kind}`), `merged UNet vs ${kind}`, "nhwc")
      tf.dispose([adapted, fromMerged])
      disposeInputs(inputs)
    })

    it.each(["kohya", "peft"])("both text encoders with their LoRA encode a prompt as diffusers does after load_lora_weights(%s)", (kind) => {
      const view = adaptedPipeline(pipeline, { ...tensors, token: new Map() })
      expectPrompt(view.textEncoders, PROMPT, live, kind)
    })

    it("the learned token alone encodes as diffusers does after load_textual_inversion of clip_l and clip_g, prompted spelled out", () => {
      const view = adaptedPipeline(pipeline, { ...tensors, lora: new Map() })
      const prompt = view.convertPrompt(TOKEN_PROMPT)
      expect(prompt).toBe(SPELLED_PROMPT)
      expect(Array.from(view.textEncoders[0]!.tokenizer.encode(prompt))).toEqual(Array.from(get(live, "embedding.input_ids").data))
      expectPrompt(view.textEncoders, prompt, live, "embedding")
    })

    it("LoRA and token together, adapted and merged, encode as diffusers with both files loaded and as diffusers' merged pipeline", () => {
      const view = adaptedPipeline(pipeline, tensors)
      expectPrompt(view.textEncoders, view.convertPrompt(TOKEN_PROMPT), live, "kohya_embedding")
      expectPrompt(view.textEncoders, view.convertPrompt(TOKEN_PROMPT), live, "merged")
      expect(Array.from(view.textEncoders[0]!.tokenizer.encode(view.convertPrompt(TOKEN_PROMPT)))).toEqual(Array.from(get(live, "merged.input_ids").data))
      const mergedEncoders = merged.textEncoders.map((e) => ({ plan: e.plan, layers: layersOf(e.parameters), tokenizer: e.tokenizer }))
      expectPrompt(mergedEncoders, SPELLED_PROMPT, live, "merged")
    })
  })
})
