import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import type { AdapterFile } from "../../../framework/services/engine.ts"
import { openSafetensors, type SafetensorsReader } from "../../safetensors/safetensors-reader.ts"
import type { ClipTokenizer } from "../../tokenizer/clip-tokenizer.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import type { Layers, ParameterSpec } from "../layers.ts"
import { tfjsTensor } from "../layout.ts"
import type { StableDiffusionPipeline } from "../pipeline-loader.ts"
import { tokenizerWithToken, tokenSpellings } from "../training/learned-token.ts"
import type { ComponentName } from "../../../framework/declaration/adaptation.ts"
import { type AdaptableModule, adaptableModules } from "../../../framework/declaration/partition.ts"
import { type LoraWeights, loraLayers } from "../training/lora.ts"
import type { DiffusionModels } from "./diffusion-models.ts"

/*
 * LoRA and textual-inversion files made by other tools (or exported by sardine), applied at
 * generation on top of a pipeline, as diffusers' `load_lora_weights` / `load_textual_inversion` do:
 *   LoRA, kohya / A1111 layout: `lora_unet_<module, dots as underscores>.lora_down.weight` [r, in(, kh, kw)],
 *     `.lora_up.weight` [out, r(, 1, 1)], optional `.alpha`; text encoders `lora_te_` or `lora_te1_` / `lora_te2_`;
 *   LoRA, diffusers / PEFT layout: `<component>.<module>.lora_A.weight` / `.lora_B.weight`, alpha from the
 *     `lora_adapter_metadata` JSON (`<component>.lora_alpha`, `<component>.r`) or per-module `.alpha`;
 *   embeddings: `{"<token>": [vectors, hidden]}`, or SDXL's `clip_l` / `clip_g` (one per text encoder).
 * Each module's adapter is scaled by alpha / rank (alpha = rank when a file gives none, as diffusers
 * assumes) times the file's declared scale, folded into its up weight once.
 */

export class AdapterFileError extends Schema.TaggedError<AdapterFileError>()("AdapterFileError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

type Reader = SafetensorsReader

const kohyaPrefixes = (family: StableDiffusionPipeline["family"]): Record<string, ComponentName> =>
  family === "sdxl"
    ? { lora_unet_: "unet", lora_te1_: "text_encoder", lora_te2_: "text_encoder_2" }
    : { lora_unet_: "unet", lora_te_: "text_encoder" }

const specsOf = (pipeline: StableDiffusionPipeline, component: ComponentName): ReadonlyArray<ParameterSpec> | undefined =>
  component === "unet" ?
    pipeline.unet.specs
    : component === "vae" ?
    pipeline.vae.specs
    : pipeline.textEncoders.find((e) => e.name === component)?.specs

/** One module's adapter as stored: torch-layout down / up and its alpha (undefined: the file gives none). */
interface StoredAdapter {
  readonly component: ComponentName
  readonly module: AdaptableModule
  readonly down: string
  readonly up: string
  readonly alpha: number | undefined
}

const sample = (names: ReadonlyArray<string>) => `${names.slice(0, 3).join(", ")}${names.length > 3 ? `, … (${names.length} in all)` : ""}`

/** Tensor names by module: `<stem><suffix>` for the suffixes of one layout. */
const groupByStem = (names: ReadonlyArray<string>, suffixes: Record<string, "down" | "up" | "alpha">) => {
  const groups = new Map<string, { down?: string; up?: string; alpha?: string }>()
  const unknown: Array<string> = []
  for (const name of names) {
    const suffix = Object.keys(suffixes).find((s) => name.endsWith(s))
    if (suffix === undefined) {
      unknown.push(name)
      continue
    }
    const stem = name.slice(0, -suffix.length)
    groups.set(stem, { ...groups.get(stem), [suffixes[suffix]!]: name })
  }
  return { groups, unknown }
}

/** The modules of every component, by the name a layout gives them. */
const moduleTable = (pipeline: StableDiffusionPipeline, keyOf: (component: ComponentName, module: string) => ReadonlyArray<string>) => {
  const table = new Map<string, { readonly component: ComponentName; readonly module: AdaptableModule }>()
  const components: ReadonlyArray<ComponentName> = ["unet", "vae", ...pipeline.textEncoders.map((e) => e.name as ComponentName)]
  for (const component of components) {
    for (const module of adaptableModules(specsOf(pipeline, component) ?? [])) {
      for (const key of keyOf(component, module.module)) table.set(key, { component, module })
    }
  }
  return table
}

const readAlpha = (reader: Reader, name: string | undefined) =>
  name === undefined ? Effect.succeed(undefined) : Effect.map(reader.readFloat32(name), (v) => v[0])

/** The adapters of a kohya-layout file. */
const kohyaAdapters = (file: string, reader: Reader, pipeline: StableDiffusionPipeline) =>
  Effect.gen(function*() {
    const prefixes = kohyaPrefixes(pipeline.family)
    const table = moduleTable(pipeline, (component, module) =>
      Object.entries(prefixes).filter(([, c]) => c === component).map(([prefix]) => `${prefix}${module.replaceAll(".", "_")}`))
    const { groups, unknown } = groupByStem(
      reader.header.tensors.map((t) =>
        t.name
      ),
      { ".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha" }
    )
    if (unknown.length > 0) {
      return yield* new AdapterFileError({
        file,
        reason: `has tensors that are not LoRA down / up / alpha weights (${sample(unknown)}); LyCORIS (LoHa, LoKr) and DoRA files are not read`
      })
    }
    const unmatched = [...groups.keys()].filter((stem) => !table.has(stem))
    if (unmatched.length > 0) {
      const sgm = unmatched.some((s) => /_(input|middle|output)_blocks?_/.test(s))
      return yield* new AdapterFileError({
        file,
        reason: `names modules this ${pipeline.family === "sdxl" ? "SDXL" : "SD"} pipeline has not (${sample(unmatched)})` +
          (sgm ? "; its UNet modules use the original SGM block names (input_blocks, middle_block, output_blocks), which sardine does not map" : "")
      })
    }
    const adapters: Array<StoredAdapter> = []
    for (const [stem, group] of groups) {
      if (group.down === undefined || group.up === undefined) {
        return yield* new AdapterFileError({ file, reason: `${stem} has no ${group.down === undefined ? "lora_down" : "lora_up"} weight` })
      }
      const { component, module } = table.get(stem)!
      adapters.push({ component, module, down: group.down, up: group.up, alpha: yield* readAlpha(reader, group.alpha) })
    }
    return adapters
  })

/** The per-component LoRA settings diffusers writes in `lora_adapter_metadata`. */
const peftMetadata = (file: string, reader: Reader) =>
  Effect.gen(function*() {
    const raw = reader.header.metadata.lora_adapter_metadata
    if (raw === undefined) return {} as Record<string, unknown>
    const parsed = yield* Effect.try({
      try: () => JSON.parse(raw) as Record<string, unknown>,
      catch: () => new AdapterFileError({ file, reason: "lora_adapter_metadata is not JSON" })
    })
    for (const key of Object.keys(parsed).filter((k) => /\.(rank_pattern|alpha_pattern)$/.test(k))) {
      const value = parsed[key]
      if (value !== null && typeof value === "object" && Object.keys(value).length > 0) {
        return yield* new AdapterFileError({ file, reason: `lora_adapter_metadata sets ${key}; per-module ranks and alphas are not read` })
      }
    }
    return parsed
  })

/** The adapters of a diffusers / PEFT-layout file. Text-encoder modules may be named with or without `text_model.`. */
const peftAdapters = (file: string, reader: Reader, pipeline: StableDiffusionPipeline) =>
  Effect.gen(function*() {
    const table = moduleTable(pipeline, (component, module) =>
      component.startsWith("text_encoder") && module.startsWith("text_model.")
        ? [`${component}.${module}`, `${component}.${module.slice("text_model.".length)}`]
        : [`${component}.${module}`])
    const { groups, unknown } = groupByStem(reader.header.tensors.map((t) => t.name), { ".lora_A.weight": "down", ".lora_B.weight": "up", ".alpha": "alpha" })
    if (unknown.length > 0) {
      return yield* new AdapterFileError({
        file,
        reason: `has tensors that are not LoRA A / B weights (${sample(unknown)}); LyCORIS and DoRA files are not read`
      })
    }
    const unmatched = [...groups.keys()].filter((stem) => !table.has(stem))
    if (unmatched.length > 0) {
      return yield* new AdapterFileError({
        file,
        reason: `names modules this ${pipeline.family === "sdxl" ? "SDXL" : "SD"} pipeline has not (${sample(unmatched)})`
      })
    }
    const metadata = yield* peftMetadata(file, reader)
    const adapters: Array<StoredAdapter> = []
    for (const [stem, group] of groups) {
      if (group.down === undefined || group.up === undefined) {
        return yield* new AdapterFileError({ file, reason: `${stem} has no ${group.down === undefined ? "lora_A" : "lora_B"} weight` })
      }
      const { component, module } = table.get(stem)!
      const declared = metadata[`${component}.lora_alpha`]
      const alpha = group.alpha !== undefined ? yield* readAlpha(reader, group.alpha) : typeof declared === "number" ? declared : undefined
      adapters.push({ component, module, down: group.down, up: group.up, alpha })
    }
    return adapters
  })

/** A's and B's tensors of a module, tfjs layout, B scaled by `scale`·alpha/rank. */
const adapterWeights = (file: string, reader: Reader, stored: StoredAdapter, scale: number) =>
  Effect.gen(function*() {
    const downInfo = reader.header.byName.get(stored.down)!
    const upInfo = reader.header.byName.get(stored.up)!
    const { module } = stored
    const rank = downInfo.shape[0]
    if (rank === undefined) return yield* new AdapterFileError({ file, reason: `${stored.component}.${module.module}: its down tensor has no dimensions` })
    const linear = module.kind === "linear"
    // A 1×1 convolution's adapter may be stored as a Linear one ([r, in]); it is the same map.
    const [downSpec, upSpec]: readonly [ParameterSpec, ParameterSpec] = linear
      ? [{ name: stored.down, shape: [rank, module.inFeatures], layout: "linear" }, { name: stored.up, shape: [module.outFeatures, rank], layout: "linear" }]
      : [
        { name: stored.down, shape: [rank, module.inFeatures, module.kernel[0], module.kernel[1]], layout: "conv" },
        { name: stored.up, shape: [module.outFeatures, rank, 1, 1], layout: "conv" }
      ]
    const downShape = downSpec.shape
    const upShape = upSpec.shape
    const fits = (actual: ReadonlyArray<number>, wanted: ReadonlyArray<number>) =>
      actual.reduce((a, b) => a * b, 1) === wanted.reduce((a, b) => a * b, 1) && actual[0] === wanted[0] && actual[1] === wanted[1]
    if (!fits(downInfo.shape, downShape) || !fits(upInfo.shape, upShape)) {
      return yield* new AdapterFileError({
        file,
        reason:
          `${stored.component}.${module.module}: down [${downInfo.shape}] and up [${upInfo.shape}] do not fit the module (down [${downShape}], up [${upShape}])`
      })
    }
    const factor = scale * (stored.alpha ?? rank) / rank
    const downValues = yield* reader.readFloat32(stored.down)
    const upValues = yield* reader.readFloat32(stored.up)
    const down = tfjsTensor(downSpec, downValues)
    const up = tf.tidy(() => tf.mul(tfjsTensor(upSpec, upValues), factor))
    return { down, up } satisfies LoraWeights
  })

/** A LoRA file's adapters by component and module, with `scale` applied (the caller disposes the tensors). */
export const readLoraFile = (pipeline: StableDiffusionPipeline, file: string, scale: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      const reader = yield* openSafetensors(file).pipe(Effect.mapError((e) => new AdapterFileError({ file, reason: e.reason })))
      const names = reader.header.tensors.map((t) => t.name)
      const kohya = names.some((n) => /^lora_(unet|te\d?)_/.test(n))
      const peft = names.some((n) => /\.lora_[AB]\.weight$/.test(n))
      if (kohya === peft) {
        return yield* new AdapterFileError({
          file,
          reason: kohya
            ? "mixes kohya (lora_unet_…) and PEFT (….lora_A.weight) names"
            : `is not a LoRA file: no lora_unet_ / lora_te_ or ….lora_A.weight tensors (${sample(names) || "no tensors"})`
        })
      }
      const stored = yield* (kohya ? kohyaAdapters(file, reader, pipeline) : peftAdapters(file, reader, pipeline))
      const created: Array<tf.Tensor> = []
      const adapters = new Map<ComponentName, Map<string, LoraWeights>>()
      yield* Effect.forEach(stored, (s) =>
        adapterWeights(file, reader, s, scale).pipe(
          Effect.mapError((e) => (e instanceof AdapterFileError ? e : new AdapterFileError({ file, reason: e.message }))),
          Effect.map((weights) => {
            created.push(weights.down, weights.up)
            const byModule = adapters.get(s.component) ?? new Map<string, LoraWeights>()
            byModule.set(s.module.module, weights)
            adapters.set(s.component, byModule)
          })
        ), { discard: true }).pipe(Effect.onError(() => Effect.sync(() => tf.dispose(created))))
      return { adapters, tensors: created as ReadonlyArray<tf.Tensor> }
    })
  )

/** A textual-inversion file's token: its name and [vectors, hidden] rows per text encoder (the caller disposes them). */
export const readEmbeddingFile = (pipeline: StableDiffusionPipeline, file: string, token: string | undefined) =>
  Effect.scoped(
    Effect.gen(function*() {
      const reader = yield* openSafetensors(file).pipe(Effect.mapError((e) => new AdapterFileError({ file, reason: e.reason })))
      const names = reader.header.tensors.map((t) => t.name)
      const encoders = pipeline.textEncoders
      // SDXL files hold one embedding per encoder; single-encoder files one tensor named after the token.
      const keys = encoders.length === 2 ? ["clip_l", "clip_g"] : names.length === 1 ? [names[0]!] : ["emb_params"]
      const missing = keys.filter((k) => !names.includes(k))
      if (missing.length > 0) {
        return yield* new AdapterFileError({
          file,
          reason: encoders.length === 2
            ? `an SDXL embedding file needs clip_l and clip_g tensors (it has ${sample(names) || "none"})`
            : `an embedding file needs one tensor, named after its token (it has ${sample(names) || "none"})`
        })
      }
      const name = token ?? reader.header.metadata.token ?? (encoders.length === 1 && keys[0] !== "emb_params" ? keys[0] : undefined)
      if (name === undefined) {
        return yield* new AdapterFileError({ file, reason: "does not say its token; name it as FILE:<token>" })
      }
      const rows = new Map<ComponentName, tf.Tensor2D>()
      for (const [i, encoder] of encoders.entries()) {
        const info = reader.header.byName.get(keys[i]!)!
        const hidden = encoder.plan.config.hidden_size
        const [first] = info.shape
        if (first === undefined || info.shape[info.shape.length - 1] !== hidden || info.shape.length > 2) {
          tf.dispose([...rows.values()])
          return yield* new AdapterFileError({ file, reason: `${keys[i]} has shape [${info.shape}], ${encoder.name} needs [vectors, ${hidden}]` })
        }
        const vectors = info.shape.length === 1 ? 1 : first
        const values = yield* reader.readFloat32(keys[i]!).pipe(Effect.mapError((e) => new AdapterFileError({ file, reason: e.message })))
        rows.set(encoder.name as ComponentName, tf.tensor2d(values, [vectors, hidden]))
      }
      const vectors = [...rows.values()][0]!.shape[0]
      return { token: name, spellings: tokenSpellings(name, vectors), rows }
    })
  )

/** Every adapter file applied to the models: LoRA files wrap the layers in order, an embedding adds its token. */
export interface AppliedAdapterFiles {
  readonly models: DiffusionModels
  /** The embedding's token spelled out (multi-vector tokens as all their spellings), when there is one. */
  readonly token?: { readonly token: string; readonly spellings: ReadonlyArray<string> }
  readonly dispose: () => void
}

export const applyAdapterFiles = (pipeline: StableDiffusionPipeline, models: DiffusionModels, files: ReadonlyArray<AdapterFile>) =>
  Effect.gen(function*() {
    const tensors: Array<tf.Tensor> = []
    const release = () => tf.dispose(tensors)
    return yield* Effect.gen(function*() {
      let layers: Record<ComponentName, Layers | undefined> = {
        unet: models.unet.layers,
        vae: models.vae.layers,
        text_encoder: models.textEncoders[0]?.layers,
        text_encoder_2: models.textEncoders[1]?.layers
      }
      let tokenizers: ReadonlyArray<ClipTokenizer> = models.textEncoders.map((e) => e.tokenizer)
      let token: AppliedAdapterFiles["token"]
      for (const adapter of files) {
        if (adapter.kind === "lora") {
          const read = yield* readLoraFile(pipeline, adapter.file, adapter.scale)
          for (const t of read.tensors) tensors.push(t)
          const wrapped = { ...layers }
          for (const [component, byModule] of read.adapters) wrapped[component] = loraLayers(layers[component]!, byModule, 1)
          layers = wrapped
          continue
        }
        if (token !== undefined) {
          return yield* new AdapterFileError({ file: adapter.file, reason: `a second embedding file (the first gave ${token.token}); sardine applies one` })
        }
        if (models.textEncoders.some((e) => e.layers.has(ADDED_TOKEN_EMBEDDING))) {
          return yield* new AdapterFileError({ file: adapter.file, reason: "the model already has a learned token; sardine applies one token at a time" })
        }
        const read = yield* readEmbeddingFile(pipeline, adapter.file, adapter.token)
        for (const rows of read.rows.values()) tensors.push(rows)
        tokenizers = yield* Effect.forEach(models.textEncoders, (encoder, i) =>
          Effect.try({
            try: () => tokenizerWithToken(tokenizers[i]!, read.spellings, encoder.plan.config.vocab_size),
            catch: (e) =>
              new AdapterFileError({
                file: adapter.file,
                reason: `its token cannot be added to ${pipeline.textEncoders[i]!.name}'s tokenizer: ${(e as Error).message}`
              })
          }))
        const withRows = { ...layers }
        for (const [component, rows] of read.rows) withRows[component] = withExtraParameter(layers[component]!, ADDED_TOKEN_EMBEDDING, rows)
        layers = withRows
        token = { token: read.token, spellings: read.spellings }
      }
      const applied: AppliedAdapterFiles = {
        models: {
          ...models,
          unet: { ...models.unet, layers: layers.unet! },
          vae: { ...models.vae, layers: layers.vae! },
          textEncoders: models.textEncoders.map((e, i) => ({ ...e, layers: layers[i === 0 ? "text_encoder" : "text_encoder_2"]!, tokenizer: tokenizers[i]! }))
        },
        ...(token === undefined ? {} : { token }),
        dispose: release
      }
      return applied
    }).pipe(Effect.onError(() => Effect.sync(release)))
  })

/** Layers that also answer `name` with `value` (an added token's embedding rows). */
const withExtraParameter = (base: Layers, name: string, value: tf.Tensor): Layers => ({
  ...base,
  parameter: (n) => (n === name ? value : base.parameter(n)),
  has: (n) => n === name || base.has(n)
})
