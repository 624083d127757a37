import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposeParameters } from "../../adapters/tfjs/checkpoint.ts"
import {
  controlNet,
  controlNetConfigFromUnet,
  controlNetConfigJson,
  controlNetFromUnet,
  type ControlNetInputs,
  type ControlNetPlan,
  controlNetSpecs,
  planControlNet
} from "../../adapters/tfjs/controlnet.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { toTorchLayout } from "../../adapters/tfjs/layout.ts"
import { type LoadedModel, loadControlNet, loadUnet2DCondition } from "../../adapters/tfjs/pipeline-loader.ts"
import { type ControlResiduals, unet2dCondition, type Unet2DConditionPlan } from "../../adapters/tfjs/unet2d-condition.ts"
import { expectClose, get, nhwc, readReference, type ReferenceTensor } from "../models/reference.ts"

/**
 * sardine's ControlNetModel against diffusers (tools/make_controlnet_goldens.py): the residuals of a loaded
 * diffusers ControlNet at scale 1 and in guess mode, the UNet's prediction with them added, and from_unet's
 * config and weights, on a tiny SD-1 and a tiny SDXL configuration.
 */

const FIXTURES = "test/fixtures/controlnet"
const CASES = [
  { name: "sd1", unet: "test/fixtures/pipelines/sd1-tiny/unet", contextWidth: 16, sdxl: false },
  { name: "sdxl", unet: `${FIXTURES}/sdxl-unet`, contextWidth: 24, sdxl: true }
] as const

const inputsOf = (reference: ReadonlyMap<string, ReferenceTensor>, sdxl: boolean) => {
  const sample = nhwc(get(reference, "input.sample"))
  const context = get(reference, "input.encoder_hidden_states")
  const ids = sdxl ? get(reference, "input.time_ids").data : undefined
  return {
    sample,
    timesteps: Array.from(get(reference, "input.timestep").data),
    encoderHiddenStates: tf.tensor3d(context.data as Float32Array, context.shape as [number, number, number]),
    condition: nhwc(get(reference, "input.controlnet_cond")),
    ...(ids === undefined ? {} : {
      textTime: {
        textEmbeds: tf.tensor2d(get(reference, "input.text_embeds").data as Float32Array, [2, 12]),
        timeIds: [Array.from(ids.subarray(0, 6)), Array.from(ids.subarray(6, 12))]
      }
    })
  }
}

const disposeInputs = (inputs: ControlNetInputs) =>
  tf.dispose([inputs.sample, inputs.encoderHiddenStates, inputs.condition, ...(inputs.textTime ? [inputs.textTime.textEmbeds] : [])])

const disposeResiduals = (r: ControlResiduals) => tf.dispose([...r.down, r.mid])

const expectResiduals = (residuals: ControlResiduals, reference: ReadonlyMap<string, ReferenceTensor>, prefix: string) => {
  const count = [...reference.keys()].filter((k) => k.startsWith(`${prefix}.down.`)).length
  expect(residuals.down.length, `${prefix}: one residual per skip connection`).toBe(count)
  residuals.down.forEach((r, i) => expectClose(r, get(reference, `${prefix}.down.${i}`), `${prefix}.down.${i}`, "nhwc"))
  expectClose(residuals.mid, get(reference, `${prefix}.mid`), `${prefix}.mid`, "nhwc")
}

describe.each(["cpu", "wasm"])("ControlNet parity with diffusers on the %s backend", (backend) => {
  const loaded = new Map<string, { unet: LoadedModel<Unet2DConditionPlan>; controlnet: LoadedModel<ControlNetPlan>; reference: Map<string, ReferenceTensor> }>()
  beforeAll(async () => {
    await Effect.runPromise(selectBackend(backend))
    for (const c of CASES) {
      loaded.set(c.name, {
        unet: await Effect.runPromise(loadUnet2DCondition(c.unet)),
        controlnet: await Effect.runPromise(loadControlNet(`${FIXTURES}/${c.name}-controlnet`)),
        reference: await readReference(`${FIXTURES}/${c.name}.reference.safetensors`)
      })
    }
  })
  afterAll(() => {
    for (const { unet, controlnet } of loaded.values()) {
      disposeParameters(unet.parameters)
      disposeParameters(controlnet.parameters)
    }
  })

  it.each(CASES)("$name: the residuals at scale 1 and at 0.6 in guess mode, and the UNet's prediction with them", ({ name, sdxl }) => {
    const { unet, controlnet, reference } = loaded.get(name)!
    expect(controlnet.plan.config.addition_embed_type).toBe(sdxl ? "text_time" : null)
    const inputs = inputsOf(reference, sdxl)
    const layers = layersOf(controlnet.parameters)
    const before = tf.memory().numTensors
    const plain = controlNet(controlnet.plan, layers, inputs)
    expect(tf.memory().numTensors - before, "only the residuals stay").toBe(plain.down.length + 1)
    expectResiduals(plain, reference, "scale1")
    const guessed = controlNet(controlnet.plan, layers, { ...inputs, conditioningScale: 0.6, guessMode: true })
    expectResiduals(guessed, reference, "guess06")

    const unetLayers = layersOf(unet.parameters)
    const withResiduals = unet2dCondition(unet.plan, unetLayers, { ...inputs, controlResiduals: plain })
    expectClose(withResiduals, get(reference, "unet.output"), "UNet with residuals", "nhwc")
    const without = unet2dCondition(unet.plan, unetLayers, inputs)
    expectClose(without, get(reference, "unet.output_without_residuals"), "UNet without residuals", "nhwc")
    const shift = tf.tidy(() => tf.max(tf.abs(tf.sub(withResiduals, without))).dataSync()[0])
    expect(shift, "the residuals move the prediction").toBeGreaterThan(1e-2)
    tf.dispose([withResiduals, without])
    disposeResiduals(plain)
    disposeResiduals(guessed)
    disposeInputs(inputs)
  })

  it("a conditioning image of the wrong size or channel count is refused with the size the ControlNet takes", () => {
    const { controlnet, reference } = loaded.get("sd1")!
    const inputs = inputsOf(reference, false)
    const small = tf.zeros([2, 8, 12, 3]) as tf.Tensor4D
    const oneChannel = tf.zeros([2, 16, 24, 1]) as tf.Tensor4D
    const layers = layersOf(controlnet.parameters)
    expect(() => controlNet(controlnet.plan, layers, { ...inputs, condition: small })).toThrow(/8×12×3 for latents of 8×12.*takes 16×24×3/)
    expect(() => controlNet(controlnet.plan, layers, { ...inputs, condition: oneChannel })).toThrow(/conditioning_channels 3/)
    tf.dispose([small, oneChannel])
    disposeInputs(inputs)
  })

  it.each(CASES)("$name: from_unet writes diffusers' config and copies, zeroes and draws the weights as diffusers does", async ({ name, unet: unetFolder }) => {
    const { unet, reference } = loaded.get(name)!
    const golden = JSON.parse(await readFile(`${FIXTURES}/${name}-from-unet.json`, "utf8")) as Record<string, unknown>
    const embedding = golden.conditioning_embedding_out_channels as Array<number>
    const config = await Effect.runPromise(
      controlNetConfigFromUnet(unet.plan.config, `${unetFolder}/config.json`, { conditioningChannels: 3, conditioningEmbeddingOutChannels: embedding })
    )
    const { _diffusers_version: _, ...expected } = golden
    expect(JSON.parse(controlNetConfigJson(config))).toEqual(expected)

    const plan = await Effect.runPromise(planControlNet(config, "from_unet"))
    const parameters = controlNetFromUnet(plan, unet.parameters, 5)
    const again = controlNetFromUnet(plan, unet.parameters, 5)
    const otherSeed = controlNetFromUnet(plan, unet.parameters, 6)
    const specs = controlNetSpecs(plan)
    expect(new Set(specs.map((s) => s.name))).toEqual(
      new Set([
        ...[...reference.keys()].filter((k) => k.startsWith("from_unet.")).map((k) => k.slice("from_unet.".length)),
        ...specs.map((s) => s.name).filter((n) => /^controlnet_cond_embedding\.(conv_in|blocks)\./.test(n))
      ])
    )
    for (const spec of specs) {
      const values = toTorchLayout(spec, parameters.get(spec.name)!.dataSync() as Float32Array)
      const golden = reference.get(`from_unet.${spec.name}`)
      if (golden !== undefined) {
        expect(Array.from(values), spec.name).toEqual(Array.from(golden.data))
        continue
      }
      // torch draws these: kaiming_uniform_(a=√5) weights and their biases, U(±1/√fan_in); sardine draws from its seeded stream.
      const fanIn = spec.name.endsWith(".weight")
        ? spec.shape.slice(1).reduce((a, b) => a * b, 1)
        : specs.find((s) => s.name === spec.name.replace(/bias$/, "weight"))!.shape.slice(1).reduce((a, b) => a * b, 1)
      const bound = 1 / Math.sqrt(fanIn)
      expect(Math.max(...values.map(Math.abs)), spec.name).toBeLessThanOrEqual(bound)
      expect(Math.max(...values.map(Math.abs)), spec.name).toBeGreaterThan(bound / 2)
      expect(Array.from(again.get(spec.name)!.dataSync()), `${spec.name}: same seed`).toEqual(Array.from(parameters.get(spec.name)!.dataSync()))
      expect(Array.from(otherSeed.get(spec.name)!.dataSync()), `${spec.name}: another seed`).not.toEqual(Array.from(parameters.get(spec.name)!.dataSync()))
    }
    for (const map of [parameters, again, otherSeed]) disposeParameters(map)
  })

  it("from_unet refuses a UNet with a layer count per block, as diffusers' ControlNetModel cannot take it", async () => {
    const unet = await Effect.runPromise(loadUnet2DCondition("test/fixtures/pipelines/sdxl-tiny/unet"))
    const refused = await Effect.runPromise(Effect.flip(
      controlNetConfigFromUnet(unet.plan.config, "sdxl-tiny/unet/config.json", { conditioningChannels: 3, conditioningEmbeddingOutChannels: [4, 8] })
    ))
    expect(refused.message).toMatch(
      /sdxl-tiny\/unet\/config\.json \(as a ControlNet\): layers_per_block: diffusers' ControlNetModel takes one count for every block/
    )
    disposeParameters(unet.parameters)
  })

  it("a UNet folder given as a ControlNet is refused by its class name", async () => {
    const refused = await Effect.runPromise(Effect.flip(loadControlNet(`${FIXTURES}/sdxl-unet`)))
    expect(refused.message).toMatch(/sdxl-unet\/config\.json: _class_name: sardine supports only ControlNetModel here/)
  })
})
