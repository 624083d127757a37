import { Effect, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { loadavg } from "node:os"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { resolveAdaptation, resolveControlNet } from "../../framework/declaration/adaptation.ts"
import { BaseModel, diffusers } from "../../framework/declaration/base-model.ts"
import { Conditioning, controlNet } from "../../framework/declaration/conditioning.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { defaultUncertainty } from "../../framework/declaration/evaluation.ts"
import { Generation } from "../../framework/declaration/generation.ts"
import type { SampleImage } from "../../framework/metrics/metric-input.ts"
import { Engine, type GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { pairedEvaluation } from "../../framework/steps/paired-evaluation.ts"
import { prepareConditioned } from "../controlnet/conditioned-data.ts"
import { repoRoot } from "../support/run-process.ts"
import { components, temporaryFolder, training } from "../training/training-run.ts"
import { runTorch } from "./torch-worker.ts"

/**
 * Issue 19's "trained beats shuffled", cut down to CI size on the torch engine: a full ControlNet made from
 * the demo base's UNet (everything else frozen) trained on the synthetic label maps at 32 px, then each
 * scene of a held-out set sampled with its own map; the paired evaluation's layout agreement of each
 * sample with its own scene's truth must have its 95 % interval (BCa bootstrap over noise draws, as the
 * evaluate step computes it) above the shuffled level (each sample against another scene's truth: what
 * the same model gives for a shuffled condition). bench/controlnet-layout.ts is the full-size run.
 * Cost: see the report of issue 19 (≈ 90 s on a quiet 2-core machine).
 */

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const STEPS = env("SARDINE_LAYOUT_STEPS", 300)
const LR = env("SARDINE_LAYOUT_LR", 1e-2)
const SEED = env("SARDINE_LAYOUT_SEED", 1)
const SCENES = env("SARDINE_LAYOUT_SCENES", 6)
const DRAWS = env("SARDINE_LAYOUT_DRAWS", 4)
const SIDE = 32
const caption = "SAR image of {caption}"
const data = synthetic({ n: 64, size: SIDE, seed: 1, looks: 1, captionTemplate: caption })
const scenes = synthetic({ n: SCENES, size: SIDE, seed: 5, looks: 1, captionTemplate: caption })
const pipeline = resolve(repoRoot, "experiments/demo/base")
const base = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(pipeline, { family: "tiny" })), path: pipeline }
const adaptation = resolveAdaptation(
  components({ unet: { _tag: "frozen" }, vae: { _tag: "frozen" }, textEncoders: { _tag: "frozen" } }),
  "tiny",
  resolveControlNet(
    Schema.decodeUnknownSync(Conditioning)(controlNet({ input: "label-map", from: "conditioning_file_name", treatment: { _tag: "full", lr: LR } })),
    data
  )
)

describe("a ControlNet trained on the label maps (torch engine)", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  beforeAll(async () => {
    folder = await temporaryFolder("controlnet-layout")
  })
  afterAll(() => folder.remove())

  it(`follows its own scene's layout more than another scene's (${STEPS} steps, lr ${LR}, ${SCENES} scenes × ${DRAWS} noise draws)`, async () => {
    const started = Date.now()
    const [dataDir, conditionsDir, workDir, outDir] = ["data", "conditions", "model", "samples"].map((d) => join(folder.dir, d)) as [string, string, string, string]
    await Effect.runPromise(prepareConditioned(dataDir, data))
    await Effect.runPromise(prepareConditioned(conditionsDir, scenes))
    await runTorch(Effect.flatMap(Engine, (engine) =>
      engine.train({
        base,
        adaptation,
        train: training({ steps: STEPS, batchSize: 4, seed: SEED, checkpointEvery: STEPS }),
        dataDir,
        workDir,
        progress: () => Effect.void,
        log: () => Effect.void,
        metrics: () => Effect.void
      })))
    await runTorch(Effect.flatMap(Engine, (engine) =>
      engine.generate({
        base,
        adaptation,
        generate: Schema.decodeUnknownSync(Generation)({ conditions: scenes, seeds: Array.from({ length: DRAWS }, (_, i) => i), steps: 8, guidanceScale: 3 }),
        modelDir: workDir,
        conditionsDir,
        resolution: SIDE,
        outDir,
        progress: () => Effect.void
      })))
    const paired = await Effect.runPromise(
      Effect.gen(function*() {
        const io = yield* ImageIO
        const samples = JSON.parse(yield* Effect.promise(() => readFile(join(outDir, "samples.json"), "utf8"))) as Array<GeneratedSample>
        const images = yield* Effect.forEach(samples, (s) =>
          Effect.map(io.read(join(outDir, s.tiff)), (r): SampleImage => ({ name: s.tiff, width: r.width, height: r.height, data: r.data })))
        return yield* pairedEvaluation(samples, images, conditionsDir, {
          domain: { kind: "amplitude" },
          bins: 256,
          klPseudoCount: 1,
          uncertainty: defaultUncertainty,
          previews: { dir: join(folder.dir, "evaluation"), generated: samples.map((s) => s.png) }
        })
      }).pipe(Effect.provide(ImageIOLive))
    )
    const { layout, shuffledLayout } = paired.intervals
    const show = (e: { value: number; low: number; high: number }) => `${e.value.toFixed(3)} [${e.low.toFixed(3)}, ${e.high.toFixed(3)}]`
    console.log(
      `controlnet layout: steps=${STEPS} lr=${LR} seed=${SEED} scenes=${SCENES} draws=${DRAWS}: own ${show(layout!)}, shuffled ${show(shuffledLayout!)}; ` +
        `${((Date.now() - started) / 1000).toFixed(0)} s at load ${loadavg()[0]!.toFixed(1)}`
    )
    expect(paired.pairs).toHaveLength(SCENES * DRAWS)
    expect(layout!.low, "the own-scene layout interval's lower bound against the shuffled level").toBeGreaterThan(shuffledLayout!.value)
  }, 900_000)
})
