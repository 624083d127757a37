import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { clipImageFeatures, clipModel, clipModelSpecs, clipTextFeatures, LOGIT_SCALE } from "../../adapters/tfjs/clip-model.ts"
import { type ClipModelDescription, loadClipModelWeights, readClipModelDescription } from "../../adapters/tfjs/clip-model-folder.ts"
import { captionTargets, contrastiveLoss } from "../../adapters/tfjs/clip-training/contrastive-loss.ts"
import { disposeParameters } from "../../adapters/tfjs/checkpoint.ts"
import { layersOf, type ParameterMap } from "../../adapters/tfjs/layers.ts"
import { toTorchLayout } from "../../adapters/tfjs/layout.ts"
import { prepareBackendForTraining } from "../../adapters/tfjs/training/trainer.ts"
import "../../adapters/tfjs/training/register-gradients.ts"
import { expectClose, get, idRows, nhwc, readReference, type ReferenceTensor } from "../models/reference.ts"

/** sardine's CLIPModel (both towers, projections, logit scale, contrastive loss) against transformers' (tools/make_clip_model_goldens.py). */

const FIXTURES = "test/fixtures/clip-model"
const reference = JSON.parse(readFileSync(`${FIXTURES}/reference.json`, "utf8")) as { texts: Array<string> }

/** Runs `body` and checks that it leaves exactly `kept` more tensors than before (its results). */
const countingTensors = <T>(kept: number, body: () => T): T => {
  const before = tf.memory().numTensors
  const result = body()
  expect(tf.memory().numTensors - before, "tensors left behind").toBe(kept)
  return result
}

describe.each(["cpu", "wasm"])("CLIPModel parity with transformers on the %s backend", (backend) => {
  let golden: Map<string, ReferenceTensor>
  let model: ClipModelDescription
  let parameters: ParameterMap
  let pixels: tf.Tensor4D
  let ids: Array<Int32Array>

  beforeAll(async () => {
    await Effect.runPromise(selectBackend(backend))
    await Effect.runPromise(prepareBackendForTraining)
    golden = await readReference(`${FIXTURES}/reference.safetensors`)
    model = await Effect.runPromise(readClipModelDescription(`${FIXTURES}/tiny-clip`, { preprocessorRequired: true }))
    parameters = await Effect.runPromise(loadClipModelWeights(`${FIXTURES}/tiny-clip`, model.plan))
    pixels = nhwc(get(golden, "pixel_values"))
    ids = idRows(get(golden, "input_ids"))
  })
  afterAll(() => {
    disposeParameters(parameters)
    pixels.dispose()
  })

  it("reads the saved model under transformers' names, with the tokenizer's ids", () => {
    expect(tf.getBackend()).toBe(backend)
    expect([...parameters.keys()].sort()).toEqual(clipModelSpecs(model.plan).map((s) => s.name).sort())
    expect(reference.texts.map((t) => Array.from(model.tokenizer.encode(t)))).toEqual(ids.map((row) => Array.from(row)))
  })

  it("image features equal get_image_features (patch conv, class token, positions, both layer norms, GELU tower)", () => {
    const features = countingTensors(1, () => clipImageFeatures(model.plan, layersOf(parameters), pixels))
    expectClose(features, get(golden, "image_embeds"), "image_embeds")
    features.dispose()
  })

  it("text features equal get_text_features (causal quick-GELU tower pooled at end of text, then text_projection)", () => {
    const features = countingTensors(1, () => clipTextFeatures(model.plan, layersOf(parameters), ids))
    expectClose(features, get(golden, "text_embeds"), "text_embeds")
    features.dispose()
  })

  it("logits_per_image are exp(logit_scale) · cosine, as CLIPModel.forward", () => {
    const out = countingTensors(3, () => clipModel(model.plan, layersOf(parameters), pixels, ids))
    expectClose(out.logitsPerImage, get(golden, "logits_per_image"), "logits_per_image")
    tf.dispose([out.logitsPerImage, out.imageEmbeds, out.textEmbeds])
  })

  it("the contrastive loss and its gradients equal CLIPModel(return_loss=True) and torch's backward", () => {
    const variables = new Map([...parameters].map(([name, t]) => [name, tf.variable(t, true)]))
    const targets = tf.tensor2d(captionTargets(reference.texts), [ids.length, ids.length])
    const names = new Map([...variables].map(([name, v]) => [v.name, name]))
    const { grads, value } = tf.variableGrads(
      () => contrastiveLoss(clipModel(model.plan, layersOf(variables), pixels, ids).logitsPerImage, targets),
      [...variables.values()]
    )
    expectClose(tf.reshape(value, [1]), get(golden, "loss"), "loss")
    const byName = new Map(Object.entries(grads).map(([variable, g]) => [names.get(variable)!, g]))
    const specs = new Map(clipModelSpecs(model.plan).map((s) => [s.name, s]))
    const gradients = [...golden.keys()].filter((k) => k.startsWith("grad."))
    expect(gradients.length).toBeGreaterThan(10)
    for (const key of gradients) {
      const name = key.slice("grad.".length)
      const spec = specs.get(name)!
      const torch = toTorchLayout(spec, byName.get(name)!.dataSync() as Float32Array)
      const asTensor = tf.tensor(torch, spec.shape.length === 0 ? [] : spec.shape.slice())
      expectClose(name === LOGIT_SCALE ? tf.reshape(asTensor, []) : asTensor, get(golden, key), key)
      asTensor.dispose()
    }
    tf.dispose([value, targets, ...Object.values(grads), ...variables.values()])
  })

  it("repeated captions spread each row's target over its caption's pairs, as torch's cross_entropy with probability targets", () => {
    const groups = Array.from(get(golden, "soft.groups").data, (g) => `caption ${g}`)
    const loss = tf.tidy(() => {
      const image = tf.tensor2d(get(golden, "soft.image").data as Float32Array, [6, 12])
      const text = tf.tensor2d(get(golden, "soft.text").data as Float32Array, [6, 12])
      const logits = tf.mul(tf.matMul(image, text, false, true), Math.exp(get(golden, "soft.scale").data[0]!)) as tf.Tensor2D
      return tf.reshape(contrastiveLoss(logits, tf.tensor2d(captionTargets(groups), [6, 6])), [1])
    })
    expectClose(loss, get(golden, "soft.loss"), "soft-target loss")
    loss.dispose()
  })
})
