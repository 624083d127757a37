import {
  type ComponentName,
  type ResolvedAdaptation,
  type ResolvedTreatment,
  textEncodersTrain,
  trainsDiffusion,
  trainsVae,
  treatmentsOf
} from "../declaration/adaptation.ts"
import { partition, type ParameterInfo } from "../declaration/partition.ts"
import type { Precision, Training } from "../declaration/training.ts"
import { type ActivationCount, promptTokens, textEncoderActivations, unetActivations, vaeActivations, vaeScaleFactor } from "./activation-estimate.ts"

/**
 * What one train step needs in one device's memory, from the base's parameter listing, the resolved
 * adaptation and the training settings — the rules of the torch engine's worker (training.py, as
 * diffusers' train_text_to_image*.py and accelerate do it):
 *
 * - Loaded: the UNet when anything trains on the diffusion objective, the text encoders only when they
 *   train (or a token is learned; their outputs come from the encode-text cache otherwise), the VAE only
 *   when it trains (the latents come from the encode-latents cache otherwise).
 * - Weights: a fully trained component in fp32 (its weights are the fp32 master weights mixed precision
 *   autocasts from: no second copy); frozen and LoRA-adapted components in the declared precision (bf16 or
 *   fp16; the VAE in fp32 under fp16); LoRA matrices and token rows in fp32.
 * - Gradients: fp32, one per trainable value. AdamW: two fp32 moments (8 bytes a value); 8-bit AdamW:
 *   two 8-bit moments plus one fp32 scale per 2048-value block and moment (bitsandbytes' blockwise
 *   quantisation). EMA: an fp32 copy of the trainables.
 * - Activations: activation-estimate.ts per sample, times the per-device micro-batch (`batchSize` over
 *   the step's processes, `resources.train.processes` or its GPUs, as the torch engine splits it), 2 bytes a value under bf16 / fp16 autocast, 4 under fp32.
 *
 * - Sharding (`resources.train.sharding: "fsdp"` over N processes, the worker's sharding.py): the fully
 *   trained UNet's weights, gradients and AdamW states divide by N; added, the FSDP units gathered whole at
 *   once, in fp32: the root unit (the UNet's layers outside its blocks, gathered for the whole step), the
 *   largest other unit (a resnet, a transformer block, a block's samplers) twice — the one computing and the next one
 *   prefetched — and its unsharded gradient before the reduce-scatter: 4 bytes × (root + 3 × largest unit).
 *   The rounding of each shard to whole rows is not counted.
 *
 * Not counted: the CUDA context and allocator fragmentation (often 0.5–1 GiB), the validation samples'
 * pipeline, a ControlNet.
 */

/** A component's parameters: those that train (LoRA's added matrices included), and those that do not. */
export interface ComponentCount {
  readonly component: ComponentName | "token"
  readonly treatment: ResolvedTreatment["_tag"] | "token"
  readonly trainable: number
  readonly frozen: number
  /** Of `trainable`, the LoRA matrices added. */
  readonly lora: number
  /** Whether the train step loads it. */
  readonly loaded: boolean
  /** Bytes per frozen value as loaded. */
  readonly frozenBytes: number
}

/** LoRA's added values on one module: down (rank × in × kernel) and up (out × rank), as PEFT and the engines build them. */
const loraValues = (rank: number, module: { readonly inFeatures: number; readonly outFeatures: number; readonly kernel: readonly [number, number] }) =>
  rank * (module.inFeatures * module.kernel[0] * module.kernel[1] + module.outFeatures)

const sizeOf = (parameters: ReadonlyArray<ParameterInfo>, names: ReadonlyArray<string>) => {
  const shapes = new Map(parameters.map((p) => [p.name, p.shape]))
  return names.reduce((total, n) => total + (shapes.get(n) ?? []).reduce((a, b) => a * b, 1), 0)
}

const precisionBytes: Record<Precision, number> = { fp32: 4, bf16: 2, fp16: 2 }

const TOKEN_EMBEDDING = "text_model.embeddings.token_embedding.weight"

/** Trainable and frozen parameter counts per component of `adaptation`, with the learned token's rows apart. */
export const componentCounts = (
  architecture: ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>>,
  adaptation: ResolvedAdaptation,
  precision: Precision
): Array<ComponentCount> => {
  const loaded = (name: ComponentName) => name === "vae" ? trainsVae(adaptation) : name === "unet" ? trainsDiffusion(adaptation) : textEncodersTrain(adaptation)
  const counts = treatmentsOf(adaptation).flatMap(([component, treatment]): Array<ComponentCount> => {
    const parameters = architecture.get(component)
    if (parameters === undefined) return []
    const split = partition(parameters, treatment)
    const lora = treatment._tag === "lora" ? split.adapted.reduce((total, m) => total + loraValues(treatment.rank, m), 0) : 0
    const frozenBytes = treatment._tag === "full" ? 4 : component === "vae" && precision === "fp16" ? 4 : precisionBytes[precision]
    return [{
      component,
      treatment: treatment._tag,
      trainable: sizeOf(parameters, split.trainable) + lora,
      frozen: sizeOf(parameters, split.frozen),
      lora,
      loaded: loaded(component),
      frozenBytes
    }]
  })
  const token = adaptation.token
  if (token === null) return counts
  const rows = (encoders: ReadonlyArray<ComponentName>) =>
    encoders.reduce((total, e) => total + token.spellings.length * (architecture.get(e)?.find((p) => p.name === TOKEN_EMBEDDING)?.shape[1] ?? 0), 0)
  const trained = rows(token.trained)
  return [...counts, {
    component: "token",
    treatment: "token",
    trainable: trained,
    frozen: rows(token.encoders) - trained,
    lora: 0,
    loaded: true,
    frozenBytes: 4
  }]
}

/** The memory terms of a step, in bytes. */
export interface MemoryTerms {
  readonly weights: number
  readonly gradients: number
  readonly optimizer: number
  readonly ema: number
  readonly activations: number
  /** The FSDP units gathered whole at once (0 without sharding). */
  readonly gathered: number
}

export interface MemoryPlan {
  readonly components: ReadonlyArray<ComponentCount>
  /** Samples per device in one forward pass. */
  readonly microBatch: number
  readonly latent: { readonly height: number; readonly width: number }
  /** Saved activation values per sample (the VAE, UNet and text encoders that train), without and with checkpointing. */
  readonly activationsPerSample: ActivationCount
  readonly activationBytes: number
  readonly gradientCheckpointing: boolean
  /** As declared (with checkpointing when declared), and the activations of the other setting. */
  readonly terms: MemoryTerms
  readonly activationsOtherwise: number
  /** Processes the fully trained UNet is sharded over (1: not sharded). */
  readonly shardedOver: number
  readonly total: number
  /** What trains but is not counted (a ControlNet): said beside the plan. */
  readonly notCounted: ReadonlyArray<string>
}

export interface MemoryPlanInput {
  readonly architecture: ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>>
  readonly adaptation: ResolvedAdaptation
  readonly train: Training
  /** Training image side, in pixels. */
  readonly resolution: number
  /** Processes one step's batch is split over (`trainProcesses` of its resources; absent: one). */
  readonly processes?: number | undefined
  /** `resources.train.sharding` (absent: "none"). */
  readonly sharding?: "none" | "fsdp" | undefined
}

/**
 * The UNet's FSDP unit of a parameter, as sharding.py wraps it: each resnet, each transformer block of an
 * attention, the rest of each attention, the rest of each down / up / mid block, the root for the rest of the UNet.
 */
const fsdpUnit = (name: string) =>
  /^(?:(?:down_blocks|up_blocks)\.\d+|mid_block)(?:\.(?:resnets\.\d+|attentions\.\d+(?:\.transformer_blocks\.\d+)?))?\./.exec(name)?.[0] ?? "root"

/** Values of the root unit and of the largest other unit of the UNet. */
const fsdpUnits = (unet: ReadonlyArray<ParameterInfo>) => {
  const sizes = new Map<string, number>()
  for (const p of unet) sizes.set(fsdpUnit(p.name), (sizes.get(fsdpUnit(p.name)) ?? 0) + p.shape.reduce((a, b) => a * b, 1))
  const root = sizes.get("root") ?? 0
  sizes.delete("root")
  return { root, largestUnit: Math.max(0, ...sizes.values()) }
}

const optimizerBytes = (train: Training, values: number) => train.optimizer._tag === "adamw" ? 8 * values : 2 * values + 2 * 4 * Math.ceil(values / 2048)

export const memoryPlan = (input: MemoryPlanInput): MemoryPlan => {
  const { adaptation, architecture, train } = input
  const components = componentCounts(architecture, adaptation, train.precision)
  const loaded = components.filter((c) => c.loaded)
  const shardedOver = input.sharding === "fsdp" && loaded.some((c) => c.component === "unet" && c.treatment === "full") ? Math.max(1, input.processes ?? 1) : 1
  // A sharded component's values count 1/N in one device's memory.
  const share = (c: ComponentCount) => (c.component === "unet" ? 1 / shardedOver : 1)
  const trainable = loaded.reduce((total, c) => total + c.trainable * share(c), 0)
  const weights = loaded.reduce((total, c) => total + (c.frozen * c.frozenBytes + c.trainable * 4) * share(c), 0)
  const units = fsdpUnits(architecture.get("unet") ?? [])
  const gathered = shardedOver > 1 ? 4 * (units.root + 3 * units.largestUnit) : 0
  const factor = vaeScaleFactor(architecture.get("vae") ?? [])
  const latent = { height: Math.ceil(input.resolution / factor), width: Math.ceil(input.resolution / factor) }
  const counts: Array<ActivationCount> = []
  if (trainsVae(adaptation)) counts.push(vaeActivations(architecture.get("vae") ?? [], { height: input.resolution, width: input.resolution }))
  if (trainsDiffusion(adaptation)) counts.push(unetActivations(architecture.get("unet") ?? [], latent, promptTokens(architecture.get("text_encoder") ?? [])))
  if (textEncodersTrain(adaptation)) {
    for (const [name] of treatmentsOf(adaptation).filter(([n]) => n.startsWith("text_encoder"))) {
      counts.push(textEncoderActivations(architecture.get(name) ?? []))
    }
  }
  const perSample = { plain: counts.reduce((a, c) => a + c.plain, 0), checkpointed: counts.reduce((a, c) => a + c.checkpointed, 0) }
  const microBatch = Math.ceil(train.batchSize / Math.max(1, input.processes ?? 1))
  const activationBytes = train.precision === "fp32" ? 4 : 2
  const activations = (checkpointed: boolean) => (checkpointed ? perSample.checkpointed : perSample.plain) * microBatch * activationBytes
  const terms: MemoryTerms = {
    weights,
    gradients: 4 * trainable,
    optimizer: optimizerBytes(train, trainable),
    ema: train.ema === undefined ? 0 : 4 * trainable,
    activations: activations(train.gradientCheckpointing),
    gathered
  }
  return {
    components,
    microBatch,
    latent,
    activationsPerSample: perSample,
    activationBytes,
    gradientCheckpointing: train.gradientCheckpointing,
    terms,
    activationsOtherwise: activations(!train.gradientCheckpointing),
    shardedOver,
    total: terms.weights + terms.gradients + terms.optimizer + terms.ema + terms.activations + terms.gathered,
    notCounted: adaptation.controlnet === undefined ? [] : ["the ControlNet (its weights, gradients, optimizer states and activations)"]
  }
}

const termNames: Record<keyof MemoryTerms, string> = {
  weights: "weights",
  gradients: "gradients",
  optimizer: "optimizer states",
  ema: "EMA copy",
  activations: "activations",
  gathered: "gathered FSDP units"
}

/** A step that does not fit: its largest term and what to change, with what each change would need. */
export interface MemoryShortfall {
  readonly largest: keyof MemoryTerms
  readonly advice: ReadonlyArray<string>
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`

/** What to change when `plan` needs more than the device has, biggest term first; each change with the need it would give. */
export const shortfall = (input: MemoryPlanInput, plan: MemoryPlan): MemoryShortfall => {
  const largest = (Object.keys(plan.terms) as Array<keyof MemoryTerms>).reduce((a, b) => (plan.terms[b] > plan.terms[a] ? b : a))
  const needWith = (change: Partial<Training>) => gib(memoryPlan({ ...input, train: { ...input.train, ...change } }).total)
  const full = plan.components.filter((c) => c.loaded && c.treatment === "full").map((c) => c.component)
  const checkpointing = input.train.gradientCheckpointing
    ? []
    : [`declare train.gradientCheckpointing: true (needs ${needWith({ gradientCheckpointing: true })})`]
  const smaller = input.train.batchSize > 1
    ? [`a smaller train.batchSize with train.gradientAccumulation (batchSize 1 needs ${needWith({ batchSize: 1 })})`]
    : []
  const advice = [
    ...(largest === "activations" ? [...checkpointing, ...smaller] : []),
    ...(full.length > 0 ? [`train ${full.join(", ")} with LoRA instead of full`] : []),
    ...(input.train.optimizer._tag === "adamw" && plan.terms.optimizer > 0
      ? [`declare train.optimizer adamw8bit (needs ${needWith({ optimizer: { ...input.train.optimizer, _tag: "adamw8bit" } })})`]
      : []),
    ...(input.train.precision === "fp32" ? [`declare train.precision: "bf16" (needs ${needWith({ precision: "bf16" })})`] : []),
    ...(largest === "activations" ? [] : checkpointing),
    ...shardingAdvice(input, plan)
  ]
  return { largest, advice }
}

/** Sharding the full UNet (FSDP) over more processes, with what 2×, 4× and 8× the current count would need. */
const shardingAdvice = (input: MemoryPlanInput, plan: MemoryPlan): Array<string> => {
  if (!plan.components.some((c) => c.loaded && c.component === "unet" && c.treatment === "full")) return []
  const now = plan.shardedOver
  const needs = [2, 4, 8].map((k) => k * now).map((n) =>
    `${n}: ${gib(memoryPlan({ ...input, sharding: "fsdp", processes: n, train: { ...input.train, batchSize: plan.microBatch * n } }).total)}`
  )
  const what = now > 1 ? "shard the UNet (FSDP) over more processes" : "shard the UNet with FSDP (resources.train.sharding: \"fsdp\")"
  return [`${what}: each GPU needs, with the same per-process batch over resources.train.processes ${needs.join(", ")}`]
}

export const termName = (term: keyof MemoryTerms) => termNames[term]
