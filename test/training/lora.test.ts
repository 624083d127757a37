import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { clipTextModel } from "../../adapters/tfjs/clip-text-model.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { adaptedPipeline } from "../../adapters/tfjs/training/adapted-pipeline.ts"
import { mergedWeight, type LoraWeights } from "../../adapters/tfjs/training/lora.ts"
import { buildTrainingModel, disposeAdaptation, type TrainingModel } from "../../adapters/tfjs/training/trainable-model.ts"
import { prepareBackendForTraining } from "../../adapters/tfjs/training/trainer.ts"
import { unet2dCondition } from "../../adapters/tfjs/unet2d-condition.ts"
import { partition } from "../../framework/declaration/partition.ts"
import { adaptation, FIXTURES, sameBits } from "./training-run.ts"

/** Linear and Conv2d targets of every kind the UNet has (attention, 3×3 and strided convolutions, projections). */
const TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "proj_in", "time_emb_proj", "conv", "conv_in"]

const unetInputs = (pipeline: StableDiffusionPipeline) => ({
  sample: tf.randomNormal([2, 8, 8, 4], 0, 1, "float32", 11) as tf.Tensor4D,
  timesteps: [17, 803],
  encoderHiddenStates: tf.randomNormal([2, 77, pipeline.unet.plan.config.cross_attention_dim as number], 0, 1, "float32", 12) as tf.Tensor3D,
  textTime: { textEmbeds: tf.randomNormal([2, 12], 0, 1, "float32", 13) as tf.Tensor2D, timeIds: [[32, 32, 0, 0, 32, 32], [32, 32, 0, 0, 32, 32]] }
})

const values = (t: tf.Tensor) => {
  const v = t.dataSync() as Float32Array
  t.dispose()
  return v
}

describe.each(["cpu", "wasm"])("LoRA on the %s backend", (backend) => {
  let pipeline: StableDiffusionPipeline
  let model: TrainingModel
  beforeAll(async () => {
    await Effect.runPromise(selectBackend(backend))
    await Effect.runPromise(prepareBackendForTraining)
    pipeline = await Effect.runPromise(loadPipeline(`${FIXTURES}/sdxl-tiny`))
    model = buildTrainingModel(
      pipeline,
      adaptation({
        unet: { _tag: "lora", rank: 3, alpha: 6, dropout: 0.5, lr: 1e-3, targets: TARGETS },
        textEncoders: { _tag: "lora", rank: 2, dropout: 0.25, lr: 1e-3 }
      }),
      9
    )
  })
  const unetLora = () => {
    const treatment = model.tensors.adaptation.components.unet
    if (treatment._tag !== "lora") throw new Error("no UNet LoRA")
    return treatment
  }
  /** The UNet's adapters with B drawn at random (as after training), A as initialised. */
  const withTrainedUp = (seed: number) =>
    new Map<string, LoraWeights>(
      [...model.tensors.lora.get("unet")!].map(([m, w], i) => [m, { down: w.down, up: tf.randomNormal(w.up.shape, 0, 0.3, "float32", seed + i) }])
    )
  const tensorsWith = (unet: ReadonlyMap<string, LoraWeights>) => ({ ...model.tensors, lora: new Map([["unet" as const, unet]]) })
  afterAll(() => {
    disposeAdaptation(model.tensors)
    disposePipeline(pipeline)
  })

  it("at step 0 (B = 0) reproduces the base UNet and text encoders bit for bit, dropout included", () => {
    const inputs = unetInputs(pipeline)
    const plain = values(unet2dCondition(pipeline.unet.plan, layersOf(pipeline.unet.parameters), inputs))
    const view = adaptedPipeline(pipeline, model.tensors, { dropoutSeed: 3 })
    const adapted = values(unet2dCondition(pipeline.unet.plan, view.unet, inputs))
    expect(sameBits(adapted, plain)).toBe(true)
    const ids = [pipeline.textEncoders[1]!.tokenizer.encode("a sar image of a harbour")]
    const base = clipTextModel(pipeline.textEncoders[1]!.plan, layersOf(pipeline.textEncoders[1]!.parameters), ids)
    const withLora = clipTextModel(view.textEncoders[1]!.plan, view.textEncoders[1]!.layers, ids)
    expect(sameBits(values(withLora.lastHiddenState), values(base.lastHiddenState))).toBe(true)
    tf.dispose([
      inputs.sample,
      inputs.encoderHiddenStates,
      inputs.textTime.textEmbeds,
      base.penultimateHiddenState,
      base.pooledOutput,
      withLora.penultimateHiddenState,
      withLora.pooledOutput,
      ...[base.textEmbeds!, withLora.textEmbeds!]
    ])
  })

  it("targets every Linear and Conv2d module the declaration names, with kernels and strides of the base module", () => {
    const { adapted } = partition(pipeline.unet.specs, unetLora())
    const kinds = new Set(adapted.map((m) => `${m.kind} ${m.kernel.join("x")}`))
    expect(kinds).toEqual(new Set(["linear 1x1", "conv 3x3"]))
    expect(adapted.some((m) => m.module.endsWith("downsamplers.0.conv"))).toBe(true)
    expect(adapted.some((m) => m.module === "conv_in")).toBe(true)
    expect([...model.tensors.lora.get("unet")!.keys()]).toEqual(adapted.map((m) => m.module))
  })

  it("with B ≠ 0 (no dropout), equals the base with every adapter merged into its weight (W + alpha/r·A·B)", () => {
    const trained = withTrainedUp(100)
    const inputs = unetInputs(pipeline)
    const adapted = values(unet2dCondition(pipeline.unet.plan, adaptedPipeline(pipeline, tensorsWith(trained)).unet, inputs))
    const merged = new Map(pipeline.unet.parameters)
    const created: Array<tf.Tensor> = []
    for (const [module, w] of trained) {
      const weight = mergedWeight(merged.get(`${module}.weight`)!, w, unetLora().scale)
      created.push(weight)
      merged.set(`${module}.weight`, weight)
    }
    const reference = values(unet2dCondition(pipeline.unet.plan, layersOf(merged), inputs))
    const scale = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0)
    const error = adapted.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i]!)), 0)
    expect(error / scale).toBeLessThan(1e-5)
    expect(sameBits(adapted, values(unet2dCondition(pipeline.unet.plan, layersOf(pipeline.unet.parameters), inputs)))).toBe(false)
    tf.dispose([...created, ...[...trained.values()].map((w) => w.up), inputs.sample, inputs.encoderHiddenStates, inputs.textTime.textEmbeds])
  })

  it("dropout masks are fixed by the seed: same seed, same output; another seed, another output", () => {
    const trained = withTrainedUp(200)
    const inputs = unetInputs(pipeline)
    const run = (seed: number) =>
      values(unet2dCondition(pipeline.unet.plan, adaptedPipeline(pipeline, tensorsWith(trained), { dropoutSeed: seed }).unet, inputs))
    expect(sameBits(run(1), run(1))).toBe(true)
    expect(sameBits(run(1), run(2))).toBe(false)
    tf.dispose([...[...trained.values()].map((w) => w.up), inputs.sample, inputs.encoderHiddenStates, inputs.textTime.textEmbeds])
  })
})
