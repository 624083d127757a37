import { type ComponentName, textEncodersTrain, trainsDiffusion, trainsVae, treatmentsOf } from "../declaration/adaptation.ts"
import type { GpuName } from "../declaration/resources.ts"
import { promptTokens, vaeScaleFactor } from "./activation-estimate.ts"
import { type ForwardFlops, textEncoderFlops, unetFlops, vaeFlops } from "./flop-estimate.ts"
import type { MemoryPlanInput } from "./memory-plan.ts"

/**
 * What one train step computes and, given a device's peak and an assumed utilisation, how long it takes —
 * the time half of `sardine plan --resources`. Per sample, each model the step runs (the same rules as the
 * memory plan: the encode caches spare the frozen VAE and text encoders):
 *
 *   forward only                     1 × forward
 *   gradient through frozen weights  2 × forward (backward's input gradients; LoRA's or a token's own
 *                                    matrices are too small to count): a LoRA-adapted or frozen UNet under a
 *                                    trained text encoder or token, a LoRA text encoder, one whose token rows train
 *   fully trained                    3 × forward (backward's input and weight gradients, each ≈ one forward)
 *   gradient checkpointing           + 1 × the recomputed part's forward, where a gradient passes
 *
 * Step FLOPs: per sample × `batchSize` × `gradientAccumulation` (every process together). Time: step FLOPs
 * over (processes × the device's dense peak at the step's precision × utilisation). The utilisation is
 * assumed, 0.35 unless declared: diffusion UNets at bf16 on current GPUs run at roughly 30–45 % of the
 * tensor peak (convolutions, attention and normalisation between the matrix products); bench/gpu/ measures
 * the real figure on a GPU. Not counted: data loading, validation, checkpoint writing, communication.
 */

/** Dense (no sparsity) peaks, TFLOP/s: bf16 / fp16 on the tensor cores, and plain fp32. */
export const gpuPeaks: Record<GpuName, { readonly bf16: number; readonly fp32: number; readonly source: string }> = {
  H100: { bf16: 989.4, fp32: 66.9, source: "NVIDIA H100 Tensor Core GPU datasheet, SXM5" },
  "H100-PCIe": { bf16: 756.5, fp32: 51.2, source: "NVIDIA H100 Tensor Core GPU datasheet, PCIe" },
  H200: { bf16: 989.4, fp32: 66.9, source: "NVIDIA H200 Tensor Core GPU datasheet, SXM" },
  A100: { bf16: 312, fp32: 19.5, source: "NVIDIA A100 Tensor Core GPU datasheet" },
  L40S: { bf16: 362.05, fp32: 91.6, source: "NVIDIA L40S datasheet" },
  RTX4090: { bf16: 165.2, fp32: 82.6, source: "NVIDIA Ada GPU architecture whitepaper (GeForce RTX 4090, FP32 accumulate)" },
  MI300X: { bf16: 1307.4, fp32: 163.4, source: "AMD Instinct MI300X accelerator datasheet" }
}

export const defaultUtilisation = 0.35

/** One model's share of a training sample. */
export interface ModelFlops {
  readonly model: string
  /** One forward pass of one sample. */
  readonly forward: number
  /** Forward passes' worth a sample costs (1, 2 or 3, plus the recomputed share under checkpointing). */
  readonly passes: number
  readonly perSample: number
}

export interface TimePlan {
  readonly models: ReadonlyArray<ModelFlops>
  readonly perSample: number
  /** Samples of one optimiser step, every process together (`batchSize` × `gradientAccumulation`). */
  readonly samplesPerStep: number
  readonly stepFlops: number
  readonly processes: number
  /** The device's peak at the step's precision, FLOP/s, and where it comes from; absent when none is declared. */
  readonly peak?: { readonly flopsPerSecond: number; readonly source: string }
  readonly utilisation: number
  readonly secondsPerStep?: number
  /** Every step of the declaration (`train.steps`). */
  readonly trainSeconds?: number
  /** `resources.train.time`, in seconds, when declared. */
  readonly timeLimit?: number
}

export interface TimePlanInput extends MemoryPlanInput {
  readonly gpu?: GpuName | undefined
  /** A declared peak (TFLOP/s at the step's precision), over the table's. */
  readonly gpuPeakTflops?: number | undefined
  readonly utilisation?: number | undefined
  readonly timeLimit?: number | undefined
}

const passesOf = (flops: ForwardFlops, gradient: "none" | "input" | "weights", checkpointing: boolean) =>
  gradient === "none" ? 1 : (gradient === "weights" ? 3 : 2) + (checkpointing && flops.total > 0 ? flops.checkpointed / flops.total : 0)

export const timePlan = (input: TimePlanInput): TimePlan => {
  const { adaptation, architecture, train } = input
  const parameters = (name: ComponentName) => architecture.get(name) ?? []
  const treatments = new Map(treatmentsOf(adaptation))
  const gradientOf = (name: ComponentName): "input" | "weights" => (treatments.get(name)?._tag === "full" ? "weights" : "input")
  const models: Array<readonly [string, ForwardFlops, "none" | "input" | "weights"]> = []
  const factor = vaeScaleFactor(parameters("vae"))
  if (trainsVae(adaptation)) {
    const vae = vaeFlops(parameters("vae"), { height: input.resolution, width: input.resolution })
    models.push(["vae (encoder)", vae.encoder, gradientOf("vae")], ["vae (decoder)", vae.decoder, gradientOf("vae")])
  }
  if (trainsDiffusion(adaptation)) {
    const tokens = promptTokens(parameters("text_encoder"))
    const latent = { height: Math.ceil(input.resolution / factor), width: Math.ceil(input.resolution / factor) }
    models.push(["unet", unetFlops(parameters("unet"), latent, tokens), gradientOf("unet")])
    if (textEncodersTrain(adaptation)) {
      for (const name of ["text_encoder", "text_encoder_2"] as const) {
        if (!treatments.has(name)) continue
        const throughToken = adaptation.token?.trained.includes(name) === true
        const gradient = treatments.get(name)?._tag === "frozen" ? (throughToken ? "input" : "none") : gradientOf(name)
        models.push([name, textEncoderFlops(parameters(name), promptTokens(parameters(name))), gradient])
      }
    }
  }
  const counted = models.map(([model, flops, gradient]): ModelFlops => {
    const passes = passesOf(flops, gradient, train.gradientCheckpointing)
    return { model, forward: flops.total, passes, perSample: flops.total * passes }
  })
  const perSample = counted.reduce((a, m) => a + m.perSample, 0)
  const samplesPerStep = train.batchSize * train.gradientAccumulation
  const stepFlops = perSample * samplesPerStep
  const processes = Math.max(1, input.processes ?? 1)
  const utilisation = input.utilisation ?? defaultUtilisation
  const table = input.gpu === undefined ? undefined : gpuPeaks[input.gpu]
  const tensor = train.precision !== "fp32"
  const peak = input.gpuPeakTflops !== undefined
    ? { flopsPerSecond: input.gpuPeakTflops * 1e12, source: "resources.train.gpuPeakTflops" }
    : table === undefined
    ? undefined
    : { flopsPerSecond: (tensor ? table.bf16 : table.fp32) * 1e12, source: `${input.gpu} ${tensor ? "bf16/fp16 tensor" : "fp32"} dense peak, ${table.source}` }
  const secondsPerStep = peak === undefined ? undefined : stepFlops / (processes * peak.flopsPerSecond * utilisation)
  return {
    models: counted,
    perSample,
    samplesPerStep,
    stepFlops,
    processes,
    ...(peak === undefined ? {} : { peak }),
    utilisation,
    ...(secondsPerStep === undefined ? {} : { secondsPerStep, trainSeconds: secondsPerStep * train.steps }),
    ...(input.timeLimit === undefined ? {} : { timeLimit: input.timeLimit })
  }
}

/** Said when the estimate exceeds the declared time limit (a warning: the utilisation is assumed). */
export const timeWarning = (plan: TimePlan, checkpointEvery: number): string | undefined => {
  if (plan.trainSeconds === undefined || plan.timeLimit === undefined || plan.trainSeconds <= plan.timeLimit) return undefined
  const steps = Math.max(1, Math.floor(plan.timeLimit / 2 / plan.secondsPerStep!))
  return `the estimated ${duration(plan.trainSeconds)} exceeds resources.train.time (${duration(plan.timeLimit)}) at ${
    Math.round(plan.utilisation * 100)
  } % utilisation: the job will be stopped and resume from its last checkpoint; ${
    checkpointEvery <= steps
      ? `train.checkpointEvery ${checkpointEvery} keeps the loss small`
      : `declare train.checkpointEvery ≤ ${steps} (now ${checkpointEvery}) so at most half a limit's work is lost`
  }`
}

export const duration = (seconds: number): string =>
  seconds < 1
    ? `${(seconds * 1000).toPrecision(3)} ms`
    : seconds < 120
    ? `${seconds.toFixed(1)} s`
    : seconds < 7200
    ? `${(seconds / 60).toFixed(1)} min`
    : `${(seconds / 3600).toFixed(1)} h`
