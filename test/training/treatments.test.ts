import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { ADDED_TOKEN_EMBEDDING, TOKEN_EMBEDDING } from "../../adapters/tfjs/clip-text-model.ts"
import { loadClipTokenizer } from "../../adapters/tokenizer/tokenizer-files.ts"
import { disposePipeline, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { disposeAdaptation } from "../../adapters/tfjs/training/trainable-model.ts"
import { applyTrainedModel } from "../../adapters/tfjs/training/trained-model-files.ts"
import { FIXTURES, sameBits, snapshot, temporaryFolder, trainFixture, type TrainingOutcome } from "./training-run.ts"

/**
 * Each treatment changes exactly what it declares: the real trainer runs two steps on the tiny
 * SDXL-like pipeline and every parameter of every component is compared bit for bit before and after.
 */

const TRAIN = { steps: 2, batchSize: 1, seed: 5, captionDropout: 0, checkpointEvery: 100 }

const names = (outcome: TrainingOutcome, component: string) => [...outcome.before.keys()].filter((n) => n.startsWith(`${component}/`))

const changed = (outcome: TrainingOutcome, name: string) => !sameBits(outcome.before.get(name)!, outcome.after.get(name)!)

const expectUntouched = (outcome: TrainingOutcome, ...components: ReadonlyArray<string>) => {
  for (const component of components) {
    const moved = names(outcome, component).filter((n) => changed(outcome, n))
    expect(moved, `${component} must be bit-identical`).toEqual([])
  }
}

/** The init word's embedding (mean of its token rows in the pretrained table), repeated: where token rows start. */
const initialRows = async (outcome: TrainingOutcome, encoder: string, word: string, vectors: number): Promise<Float32Array> => {
  const tokenizer = await Effect.runPromise(loadClipTokenizer(`${FIXTURES}/sdxl-tiny/${encoder.replace("text_encoder", "tokenizer")}`))
  const ids = tokenizer.tokenIds(word)
  const table = outcome.before.get(`${encoder}/${TOKEN_EMBEDDING}`)!
  const hidden = table.length / tokenizer.size
  const row = new Float32Array(hidden)
  for (const id of ids) for (let j = 0; j < hidden; j++) row[j]! += table[id * hidden + j]! / ids.length
  return Float32Array.from({ length: vectors * hidden }, (_, i) => row[i % hidden]!)
}

const maxDifference = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0)

const nonZero = (data: Float32Array) => data.some((v) => v !== 0)

describe("treatments on the cpu backend", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  beforeAll(async () => {
    await Effect.runPromise(selectBackend("cpu"))
    folder = await temporaryFolder("treatments")
  })
  afterAll(() => folder.remove())

  const run = (name: string, components: Parameters<typeof trainFixture>[0]["components"]) =>
    trainFixture({ dir: `${folder.dir}/${name}`, components, train: TRAIN })

  it("full UNet: every UNet parameter trains, the VAE and both text encoders stay bit-identical", async () => {
    const outcome = await run("full-unet", { unet: { _tag: "full", lr: 1e-3 } })
    const unet = names(outcome, "unet")
    expect(unet.filter((n) => !changed(outcome, n))).toEqual([])
    expectUntouched(outcome, "vae", "text_encoder", "text_encoder_2")
    expect([...outcome.weights.keys()].sort()).toEqual(unet.map((n) => n.replace("/", ".")).sort())
    expect(outcome.manifest.adaptation.components.unet).toEqual({ _tag: "full", lr: 1e-3, weightDecay: 0, only: ["*"] })
  })

  it("full UNet with only: [attn1, attn2]: exactly the attention parameters train, every other parameter stays bit-identical, and they are what the model holds", async () => {
    const outcome = await run("only-attention", { unet: { _tag: "full", lr: 1e-3, only: ["attn1", "attn2"] } })
    const inAttention = (n: string) => /\.attn[12]\./.test(n)
    const unet = names(outcome, "unet")
    const selected = unet.filter(inAttention)
    expect(selected.length).toBeGreaterThan(0)
    expect(selected.filter((n) => !changed(outcome, n))).toEqual([])
    expect(unet.filter((n) => !inAttention(n) && changed(outcome, n))).toEqual([])
    expectUntouched(outcome, "vae", "text_encoder", "text_encoder_2")
    expect([...outcome.weights.keys()].sort()).toEqual(selected.map((n) => n.replace("/", ".")).sort())
    expect(outcome.manifest.adaptation.components.unet).toMatchObject({ _tag: "full", only: ["attn1", "attn2"] })
    // Applied to a fresh base (as generate and export do), the folder gives back the trained pipeline exactly.
    const fresh = await Effect.runPromise(loadPipeline(`${FIXTURES}/sdxl-tiny`))
    const { tensors } = await Effect.runPromise(applyTrainedModel(fresh, `${folder.dir}/only-attention/work`, { useEma: false }))
    const applied = snapshot(fresh)
    disposeAdaptation(tensors)
    disposePipeline(fresh)
    expect([...outcome.after].filter(([name, values]) => !sameBits(values, applied.get(name)!)).map(([name]) => name)).toEqual([])
  })

  it("full UNet with only: [bias] (BitFit): only the biases train", async () => {
    const outcome = await run("only-bias", { unet: { _tag: "full", lr: 1e-3, only: ["bias"] } })
    const unet = names(outcome, "unet")
    expect(unet.filter((n) => n.endsWith(".bias") && !changed(outcome, n))).toEqual([])
    expect(unet.filter((n) => !n.endsWith(".bias") && changed(outcome, n))).toEqual([])
  })

  it("LoRA on the UNet and both text encoders: no base weight moves, only the adapters of the targeted modules exist and train", async () => {
    const outcome = await run("lora", {
      unet: { _tag: "lora", rank: 2, lr: 1e-2 },
      textEncoders: { _tag: "lora", rank: 2, alpha: 4, lr: 1e-2, targets: ["q_proj", "v_proj"] }
    })
    expectUntouched(outcome, "unet", "vae", "text_encoder", "text_encoder_2")
    const keys = [...outcome.weights.keys()]
    expect(keys.every((k) => k.endsWith(".lora_A.weight") || k.endsWith(".lora_B.weight"))).toBe(true)
    const unetModules = keys.filter((k) => k.startsWith("unet.") && k.endsWith(".lora_A.weight")).map((k) => k.split(".").at(-3))
    expect(new Set(unetModules)).toEqual(new Set(["to_q", "to_k", "to_v", "0"]))
    const encoderModules = keys.filter((k) => k.startsWith("text_encoder") && k.endsWith(".lora_A.weight")).map((k) => k.split(".").at(-3))
    expect(new Set(encoderModules)).toEqual(new Set(["q_proj", "v_proj"]))
    // B starts at zero and trains, except in the first encoder's last layer: SDXL reads that encoder's
    // penultimate hidden state, so its last layer gets no gradient (as in diffusers) and its B stays 0.
    const unread = "text_encoder.text_model.encoder.layers.1."
    for (const [k, w] of outcome.weights) {
      if (k.endsWith("lora_B.weight")) expect(nonZero(w.data), k).toBe(!k.startsWith(unread))
    }
    expect(outcome.manifest.adaptation.components.text_encoder).toMatchObject({ _tag: "lora", rank: 2, alpha: 4, scale: 2 })
  })

  it("learned token alone: only the token's rows move; every table and weight stays bit-identical", async () => {
    const outcome = await run("token", {
      unet: { _tag: "frozen" },
      token: { token: "<SAR>", init: "radar", lr: 5e-2, vectors: 2 }
    })
    expectUntouched(outcome, "unet", "vae", "text_encoder", "text_encoder_2")
    expect([...outcome.weights.keys()].sort()).toEqual([`text_encoder.${ADDED_TOKEN_EMBEDDING}`, `text_encoder_2.${ADDED_TOKEN_EMBEDDING}`])
    for (const encoder of ["text_encoder", "text_encoder_2"]) {
      const rows = outcome.weights.get(`${encoder}.${ADDED_TOKEN_EMBEDDING}`)!
      expect(rows.shape[0]).toBe(2)
      expect(maxDifference(rows.data, await initialRows(outcome, encoder, "radar", 2))).toBeGreaterThan(1e-4)
    }
    expect(outcome.manifest.adaptation.token).toMatchObject({ token: "<SAR>", spellings: ["<SAR>", "<SAR>_1"], trained: ["text_encoder", "text_encoder_2"] })
  })

  it("hybrid: full UNet, LoRA text encoders, token learned by the second encoder only — the first encoder's rows stay at the init word", async () => {
    const outcome = await run("hybrid", {
      unet: { _tag: "full", lr: 1e-3 },
      textEncoders: { _tag: "lora", rank: 2, lr: 1e-2 },
      token: { token: "<SAR>", init: "radar", lr: 5e-2, encoders: ["textEncoder2"] }
    })
    expect(names(outcome, "unet").filter((n) => !changed(outcome, n))).toEqual([])
    // The encoders have LoRA and an added token: their tables and weights still do not move.
    expectUntouched(outcome, "vae", "text_encoder", "text_encoder_2")
    const first = outcome.weights.get(`text_encoder.${ADDED_TOKEN_EMBEDDING}`)!
    const second = outcome.weights.get(`text_encoder_2.${ADDED_TOKEN_EMBEDDING}`)!
    expect(maxDifference(first.data, await initialRows(outcome, "text_encoder", "radar", 1))).toBeLessThan(1e-6)
    expect(maxDifference(second.data, await initialRows(outcome, "text_encoder_2", "radar", 1))).toBeGreaterThan(1e-4)
    expect(outcome.manifest.adaptation.token?.trained).toEqual(["text_encoder_2"])
  })

  it("VAE LoRA (resnet convolutions and attention): only adapters train, on reconstruction; every base weight stays", async () => {
    const outcome = await run("vae-lora", { unet: { _tag: "frozen" }, vae: { _tag: "lora", rank: 2, lr: 1e-2 } })
    expectUntouched(outcome, "unet", "vae", "text_encoder", "text_encoder_2")
    const adapted = [...outcome.weights.keys()].filter((k) => k.endsWith("lora_B.weight"))
    expect(adapted.some((k) => k.includes(".conv1.")) && adapted.some((k) => k.includes(".to_q."))).toBe(true)
    for (const k of adapted) expect(nonZero(outcome.weights.get(k)!.data), k).toBe(true)
  })

  it("full VAE: only the VAE changes", async () => {
    const outcome = await run("vae-full", { unet: { _tag: "frozen" }, vae: { _tag: "full", lr: 1e-3 } })
    expectUntouched(outcome, "unet", "text_encoder", "text_encoder_2")
    expect(names(outcome, "vae").filter((n) => changed(outcome, n)).length).toBeGreaterThan(0.9 * names(outcome, "vae").length)
  })

  it("a LoRA target that matches no module is an error naming the field", async () => {
    await expect(run("bad-target", { unet: { _tag: "lora", rank: 2, lr: 1e-3, targets: ["to_q", "no_such_proj"] } })).rejects.toThrow(
      /unet: targets\.1: "no_such_proj" matches no Linear or Conv2d module of the unet/
    )
  })

  it("an `only` pattern that matches no parameter is an error naming the field and the nearest name", async () => {
    await expect(run("bad-only", { unet: { _tag: "full", lr: 1e-3, only: ["attn1", "atn2"] } })).rejects.toThrow(
      /unet: only\.1: "atn2" matches no parameter of the unet \(did you mean "attn2"\?\)/
    )
  })

  it("nothing to train is an error", async () => {
    await expect(run("frozen", { unet: { _tag: "frozen" } })).rejects.toThrow(/every component is frozen and no token is learned/)
  })
})
