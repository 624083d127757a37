import * as tf from "@tensorflow/tfjs-core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFile, rename, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { autoencoderKlEncode, sampleLatents } from "../../adapters/tfjs/autoencoder-kl.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { CheckpointMismatchError, disposeParameters, saveParameters } from "../../adapters/tfjs/checkpoint.ts"
import { layersOf, type ParameterMap } from "../../adapters/tfjs/layers.ts"
import { ModelConfigError } from "../../adapters/tfjs/model-config.ts"
import { loadAutoencoderKl, loadClipTextModel, loadPipeline, loadUnet2DCondition, PipelineError } from "../../adapters/tfjs/pipeline-loader.ts"
import { copyOf, readAll, rewrite } from "./checkpoint-files.ts"
import { get, nhwc, readReference } from "./reference.ts"

const FIXTURES = "test/fixtures/pipelines"
const UNET_FILE = "diffusion_pytorch_model.safetensors"

const expectSameParameters = (a: ParameterMap, b: ParameterMap) => {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort())
  for (const [name, t] of a) expect(Array.from(t.dataSync()), name).toEqual(Array.from(b.get(name)!.dataSync()))
}

const editJson = async (file: string, edit: (json: Record<string, unknown>) => void) => {
  const json = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>
  edit(json)
  await writeFile(file, JSON.stringify(json))
}

beforeAll(() => Effect.runPromise(selectBackend("cpu")))

describe("checkpoint names and shapes", () => {
  it.scoped("a missing, unexpected or mis-shaped tensor is an error listing the names", () =>
    Effect.gen(function*() {
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/unet`)
      const file = join(folder, UNET_FILE)
      yield* Effect.promise(() =>
        rewrite(file, file, (tensors) => [
          ...tensors
            .filter((t) => t.name !== "conv_in.bias")
            .map((t) => (t.name === "conv_out.weight" ? { ...t, shape: [4, 8, 3, 3], data: new Float32Array(288) } : t)),
          { name: "lora_unet_extra.alpha", dtype: "F32" as const, shape: [], data: Float32Array.of(1) }
        ])
      )
      const error = yield* Effect.flip(loadUnet2DCondition(folder))
      expect(error).toBeInstanceOf(CheckpointMismatchError)
      const mismatch = error as CheckpointMismatchError
      expect(mismatch.missing).toEqual(["conv_in.bias"])
      expect(mismatch.unexpected).toEqual(["lora_unet_extra.alpha"])
      expect(mismatch.misshaped).toEqual([{ name: "conv_out.weight", expected: [4, 4, 3, 3], found: [4, 8, 3, 3] }])
      expect(mismatch.message).toContain(`${folder}: the weights do not match the config`)
      expect(mismatch.message).toContain("1 missing: conv_in.bias")
    }))

  it.scoped("reads sharded checkpoints through their index, and weight variants", () =>
    Effect.gen(function*() {
      const reference = yield* loadUnet2DCondition(`${FIXTURES}/sd1-tiny/unet`)
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/unet`)
      const tensors = yield* Effect.promise(() => readAll(join(folder, UNET_FILE)))
      const half = Math.floor(tensors.length / 2)
      const shards = [tensors.slice(0, half), tensors.slice(half)]
      const names = ["diffusion_pytorch_model-00001-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002.safetensors"]
      yield* Effect.promise(async () => {
        await rewrite(join(folder, UNET_FILE), join(folder, names[0]!), () => shards[0]!)
        await rewrite(join(folder, UNET_FILE), join(folder, names[1]!), () => shards[1]!)
        await rm(join(folder, UNET_FILE))
        const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((t) => [t.name, names[i]])))
        await writeFile(join(folder, `${UNET_FILE}.index.json`), JSON.stringify({ metadata: {}, weight_map: weightMap }))
      })
      const sharded = yield* loadUnet2DCondition(folder)
      expectSameParameters(sharded.parameters, reference.parameters)
      disposeParameters(sharded.parameters)

      const variant = yield* copyOf(`${FIXTURES}/sd1-tiny/unet`)
      yield* Effect.promise(() => rename(join(variant, UNET_FILE), join(variant, "diffusion_pytorch_model.fp16.safetensors")))
      const fp16 = yield* loadUnet2DCondition(variant, { variant: "fp16" })
      expectSameParameters(fp16.parameters, reference.parameters)
      disposeParameters(fp16.parameters)
      const wrongVariant = yield* Effect.flip(loadUnet2DCondition(variant, { variant: "bf16" }))
      expect(wrongVariant.message).toContain("no safetensors weights for variant \"bf16\"")
      disposeParameters(reference.parameters)
    }))

  it.scoped("loads a VAE saved with the pre-0.14 attention names (query, key, value, proj_attn) like diffusers", () =>
    Effect.gen(function*() {
      const reference = yield* loadAutoencoderKl(`${FIXTURES}/sd1-tiny/vae`)
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/vae`)
      const file = join(folder, UNET_FILE)
      const legacy = { "to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn" }
      yield* Effect.promise(() =>
        rewrite(file, file, (tensors) =>
          tensors.map((t) => ({
            ...t,
            name: t.name.replace(/(attentions\.0)\.(to_q|to_k|to_v|to_out\.0)\./, (_, p, m: keyof typeof legacy) => `${p}.${legacy[m]}.`)
          })))
      )
      expect((yield* Effect.promise(() => readAll(file))).some((t) => t.name === "encoder.mid_block.attentions.0.proj_attn.weight")).toBe(true)
      const loaded = yield* loadAutoencoderKl(folder)
      expectSameParameters(loaded.parameters, reference.parameters)
      disposeParameters(loaded.parameters)
      disposeParameters(reference.parameters)
    }))

  it.scoped("loads a text encoder with or without the text_model. prefix, ignoring a position_ids buffer", () =>
    Effect.gen(function*() {
      const reference = yield* loadClipTextModel(`${FIXTURES}/sd1-tiny/text_encoder`, false)
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/text_encoder`)
      const file = join(folder, "model.safetensors")
      // As the published SD-1.5 checkpoint stores it: prefixed names and an int64 position_ids buffer.
      yield* Effect.promise(() =>
        rewrite(file, file, (tensors) => [
          ...tensors.map((t) => ({ ...t, name: `text_model.${t.name}` })),
          { name: "text_model.embeddings.position_ids", dtype: "I32" as const, shape: [1, 77], data: Int32Array.from({ length: 77 }, (_, i) => i) }
        ])
      )
      const prefixed = yield* loadClipTextModel(folder, false)
      expectSameParameters(prefixed.parameters, reference.parameters)
      expect([...reference.parameters.keys()].every((name) => name.startsWith("text_model."))).toBe(true)
      disposeParameters(prefixed.parameters)
      disposeParameters(reference.parameters)
    }))

  it.scoped("writes parameters back in torch layout under their state-dict names (round trip)", () =>
    Effect.gen(function*() {
      const unet = yield* loadUnet2DCondition(`${FIXTURES}/sd1-tiny/unet`)
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/unet`)
      yield* saveParameters(join(folder, UNET_FILE), unet.specs, unet.parameters)
      const [original, saved] = yield* Effect.promise(() => Promise.all([readAll(`${FIXTURES}/sd1-tiny/unet/${UNET_FILE}`), readAll(join(folder, UNET_FILE))]))
      const byName = new Map(saved.map((t) => [t.name, t]))
      expect(saved.length).toBe(original.length)
      for (const t of original) {
        expect(byName.get(t.name)?.shape, t.name).toEqual(t.shape)
        expect(Array.from(byName.get(t.name)!.data), t.name).toEqual(Array.from(t.data))
      }
      disposeParameters(unet.parameters)
    }))
})

describe("configs sardine cannot build name the field and the rule", () => {
  const withUnetConfig = (edit: (json: Record<string, unknown>) => void) =>
    Effect.gen(function*() {
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/unet`)
      yield* Effect.promise(() => editJson(join(folder, "config.json"), edit))
      return yield* Effect.flip(loadUnet2DCondition(folder))
    })

  it.scoped("an unsupported class embedding", () =>
    Effect.gen(function*() {
      const error = yield* withUnetConfig((c) => (c.class_embed_type = "timestep"))
      expect(error).toBeInstanceOf(ModelConfigError)
      expect(error.message).toContain("config.json: class_embed_type: sardine supports only null")
    }))

  it.scoped("an unknown block type", () =>
    Effect.gen(function*() {
      const error = yield* withUnetConfig((c) => (c.down_block_types = ["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "DownBlock2D"]))
      expect(error.message).toContain("down_block_types.1: sardine supports only CrossAttnDownBlock2D and DownBlock2D")
    }))

  it.scoped("per-block lists of the wrong length, and group counts that do not divide the channels", () =>
    Effect.gen(function*() {
      expect((yield* withUnetConfig((c) => (c.block_out_channels = [4, 8]))).message).toContain("block_out_channels must have one entry per down block (3)")
      expect((yield* withUnetConfig((c) => (c.norm_num_groups = 3))).message).toContain("norm_num_groups 3 must divide")
    }))

  it.scoped("a pipeline whose model_index.json names a component sardine does not build", () =>
    Effect.gen(function*() {
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny`)
      yield* Effect.promise(() => editJson(join(folder, "model_index.json"), (j) => (j.unet = ["diffusers", "UNet2DModel"])))
      const error = yield* Effect.flip(loadPipeline(folder))
      expect(error).toBeInstanceOf(PipelineError)
      expect(error.message).toContain("component \"unet\" is [\"diffusers\",\"UNet2DModel\"]; sardine needs one of UNet2DConditionModel")
    }))
})

describe("latent sampling", () => {
  it.scoped("draws mean + std · N(0, 1) from the seed: same seed, same latents", () =>
    Effect.gen(function*() {
      const vae = yield* loadAutoencoderKl(`${FIXTURES}/sdxl-tiny/vae`)
      const reference = yield* Effect.promise(() => readReference(`${FIXTURES}/sdxl-tiny.reference.safetensors`))
      const image = nhwc(get(reference, "vae.image"))
      const dist = autoencoderKlEncode(vae.plan, layersOf(vae.parameters), image)
      const [a, b, c] = [sampleLatents(dist, 1), sampleLatents(dist, 1), sampleLatents(dist, 2)]
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()))
      expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()))
      const z = tf.tidy(() => tf.div(tf.sub(a, dist.mean), tf.exp(tf.mul(dist.logvar, 0.5))))
      const { mean, variance } = tf.moments(z)
      // 240 standard normal draws: the sample mean is within 0.2 and the variance within 0.25 of N(0, 1)'s.
      expect(Math.abs(mean.dataSync()[0]!)).toBeLessThan(0.2)
      expect(Math.abs(variance.dataSync()[0]! - 1)).toBeLessThan(0.25)
      tf.dispose([image, dist.mean, dist.logvar, a, b, c, z, mean, variance])
      disposeParameters(vae.parameters)
    }))
})
