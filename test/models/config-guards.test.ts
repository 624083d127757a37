import * as tf from "@tensorflow/tfjs-core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { beforeAll } from "vitest"
import { decodeAutoencoderKlConfig } from "../../adapters/tfjs/autoencoder-kl.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposeParameters } from "../../adapters/tfjs/checkpoint.ts"
import { decodeControlNetConfig } from "../../adapters/tfjs/controlnet.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { ModelConfigError } from "../../adapters/tfjs/model-config.ts"
import { loadUnet2DCondition } from "../../adapters/tfjs/pipeline-loader.ts"
import { decodeUnet2DConditionConfig, timeConditioning } from "../../adapters/tfjs/unet2d-condition.ts"

/**
 * The refusals that stand where indexing a per-block list would otherwise read past its end (what the
 * compiler's noUncheckedIndexedAccess made explicit): each config is the tiny fixture's with one list
 * emptied or shortened, decoded without any file (under a second in all).
 */

const FILE = "model/config.json"
const fixture = (path: string) => JSON.parse(readFileSync(`test/fixtures/${path}/config.json`, "utf8")) as Record<string, unknown>
const unet = fixture("pipelines/sd1-tiny/unet")
const sdxlUnet = fixture("pipelines/sdxl-tiny/unet")
const controlNet = fixture("controlnet/sd1-controlnet")
const vae = fixture("pipelines/sd1-tiny/vae")

const refusal = (decoded: Effect.Effect<unknown, ModelConfigError>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(decoded)
    expect(error).toBeInstanceOf(ModelConfigError)
    return error.message
  })

beforeAll(() => Effect.runPromise(selectBackend("cpu")))

describe("an empty list of blocks is refused at decode, naming the field", () => {
  const models = [
    ["UNet", (json: unknown) => decodeUnet2DConditionConfig(json, FILE), unet],
    ["ControlNet", (json: unknown) => decodeControlNetConfig(json, FILE), controlNet]
  ] as const
  for (const [model, decode, config] of models) {
    it.effect(`${model}: down_block_types`, () =>
      Effect.gen(function*() {
        const message = yield* refusal(decode({ ...config, down_block_types: [], up_block_types: [] }))
        expect(message).toContain(`${FILE}: down_block_types.0: is missing`)
      }))

    it.effect(`${model}: block_out_channels`, () =>
      Effect.gen(function*() {
        const message = yield* refusal(decode({ ...config, block_out_channels: [] }))
        expect(message).toContain(`${FILE}: block_out_channels.0: is missing`)
      }))
  }

  it.effect("VAE: down_block_types", () =>
    Effect.gen(function*() {
      const message = yield* refusal(decodeAutoencoderKlConfig({ ...vae, down_block_types: [], up_block_types: [] }, FILE))
      expect(message).toBe(`${FILE}: down_block_types and up_block_types must have one entry per block_out_channels entry (2)`)
    }))

  it.effect("VAE: block_out_channels", () =>
    Effect.gen(function*() {
      // Every per-block list empty: without the refusal the block count would be 0.
      const message = yield* refusal(decodeAutoencoderKlConfig({ ...vae, block_out_channels: [], down_block_types: [], up_block_types: [] }, FILE))
      expect(message).toContain(`${FILE}: block_out_channels.0: is missing`)
    }))
})

describe("transformer depths per layer must cover the block's layers", () => {
  // sdxl-tiny's down block 1 has 2 layers (its up block 1 has 3); one count per layer is then a list.
  it.effect("a transformer_layers_per_block entry shorter than the block's layers", () =>
    Effect.gen(function*() {
      const message = yield* refusal(decodeUnet2DConditionConfig(
        { ...sdxlUnet, transformer_layers_per_block: [1, [1], 1], reverse_transformer_layers_per_block: [1, [1, 1, 1], 1] },
        FILE
      ))
      expect(message).toBe(`${FILE}: transformer_layers_per_block[1] must give a depth for each of the block's 2 layers`)
    }))

  it.effect("a reverse_transformer_layers_per_block of the wrong length, or with an entry too short", () =>
    Effect.gen(function*() {
      const wrongLength = yield* refusal(decodeUnet2DConditionConfig({ ...sdxlUnet, reverse_transformer_layers_per_block: [1, 1] }, FILE))
      expect(wrongLength).toBe(`${FILE}: reverse_transformer_layers_per_block must have one entry per up block (3)`)
      const tooShort = yield* refusal(decodeUnet2DConditionConfig(
        { ...sdxlUnet, transformer_layers_per_block: [1, [1, 2], 1], reverse_transformer_layers_per_block: [1, [1, 1], 1] },
        FILE
      ))
      expect(tooShort).toBe(`${FILE}: reverse_transformer_layers_per_block[1] must give a depth for each of the block's 3 layers`)
    }))

  it.effect("the same lists at full length decode (the refusals above are about the lengths alone)", () =>
    decodeUnet2DConditionConfig(
      { ...sdxlUnet, transformer_layers_per_block: [1, [1, 2], 1], reverse_transformer_layers_per_block: [1, [1, 1, 1], 1] },
      FILE
    ).pipe(Effect.asVoid))
})

describe("SDXL's added time conditioning", () => {
  it.scoped("time-id rows of unequal length are refused, not read past", () =>
    Effect.gen(function*() {
      const model = yield* Effect.acquireRelease(
        loadUnet2DCondition("test/fixtures/pipelines/sdxl-tiny/unet"),
        (m) => Effect.sync(() => disposeParameters(m.parameters))
      )
      // projection_class_embeddings_input_dim 36 = 12 pooled text values + 6 time ids × addition_time_embed_dim 4.
      const textEmbeds = tf.zeros([2, 12]) as tf.Tensor2D
      yield* Effect.addFinalizer(() => Effect.sync(() => textEmbeds.dispose()))
      const condition = (timeIds: ReadonlyArray<ReadonlyArray<number>>) => () =>
        tf.tidy(() => timeConditioning(model.plan, layersOf(model.parameters), [10], { textEmbeds, timeIds }, 2))
      expect(condition([[8, 8, 0, 0, 8, 8], [8, 8, 0, 0, 8, 8]])).not.toThrow()
      expect(condition([[8, 8, 0, 0, 8, 8], [8, 8, 0, 0, 8]])).toThrow(
        "text_time conditioning of 2 text embeddings of width 12 and 2 rows of unequal numbers of time ids does not give 2 rows of " +
          "projection_class_embeddings_input_dim 36"
      )
    }))
})
