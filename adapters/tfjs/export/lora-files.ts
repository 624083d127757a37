import { Effect } from "effect"
import { treatmentsOf, type ComponentName, type ResolvedLora } from "../../../framework/declaration/adaptation.ts"
import { patternsAsRegex } from "../../../framework/declaration/module-patterns.ts"
import { partition, type AdaptableModule, type ParameterInfo } from "../../../framework/declaration/partition.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { writeSafetensors, type TensorToWrite } from "../../safetensors/safetensors-writer.ts"
import type { ParameterSpec } from "../layers.ts"
import { toTorchLayout } from "../layout.ts"
import { loraSpecs } from "../training/lora.ts"
import type { ModelManifest, StoredTensor } from "../training/trained-model-files.ts"
import { ExportError } from "./export-error.ts"

/**
 * A trained model's LoRA adapters in the two layouts other tools load (DESIGN §5):
 *   kohya / A1111 / ComfyUI: `lora_unet_<module with dots as underscores>.lora_down.weight` [r, in(, kh, kw)],
 *     `.lora_up.weight` [out, r(, 1, 1)], `.alpha` (scale = alpha / r); text encoders `lora_te_` (one
 *     encoder) or `lora_te1_` / `lora_te2_` (SDXL). `ss_network_dim` / `ss_network_alpha` give the rank
 *     and alpha when every component shares them, else "Dynamic" (as kohya's resize_lora writes);
 *     readers take each module's rank from its weights and its alpha from its `.alpha`.
 *   diffusers / PEFT: `<component>.<module>.lora_A.weight` / `.lora_B.weight`, with rank, alpha and target
 *     modules in the `lora_adapter_metadata` JSON as diffusers' `save_lora_weights` writes it.
 * Weights are torch layout, float32. A LoRA file carries adapters only: a model with a fully trained
 * component is refused (its trained weights would be silently left out); a learned token is exported
 * apart (`--format embedding`) and said so.
 */

type ReadTensor = (name: string) => Effect.Effect<StoredTensor, SafetensorsError>

/** The model's LoRA components, each with the modules its targets adapt in the base's architecture. */
export interface LoraPart {
  readonly component: ComponentName
  readonly treatment: ResolvedLora
  readonly modules: ReadonlyArray<AdaptableModule>
}

/**
 * The LoRA parts of a trained model, refusing what a LoRA file cannot carry; also the notes for the
 * user (the learned token, exported apart).
 */
export const loraParts = (
  format: "kohya" | "peft",
  manifest: ModelManifest,
  architecture: ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>>
): Effect.Effect<{ readonly parts: ReadonlyArray<LoraPart>; readonly notes: ReadonlyArray<string> }, ExportError> => {
  const treatments = treatmentsOf(manifest.adaptation)
  const fully = treatments.filter(([, t]) => t._tag === "full").map(([name]) => name)
  if (fully.length > 0) {
    return Effect.fail(
      new ExportError({
        format,
        reason: `a LoRA file carries adapters only, not the fully trained ${fully.join(" and ")}; ` +
          "export the whole trained model with --format diffusers"
      })
    )
  }
  const parts = treatments.flatMap(([component, treatment]) =>
    treatment._tag === "lora" ? [{ component, treatment, modules: partition(architecture.get(component) ?? [], treatment).adapted }] : []
  )
  if (parts.length === 0) {
    return Effect.fail(
      new ExportError({
        format,
        reason: `the model has no LoRA (${treatments.map(([n, t]) => `${n} ${t._tag}`).join(", ")}); export the learned token with --format embedding`
      })
    )
  }
  const token = manifest.adaptation.token
  const notes = token === null ? [] : [`the learned token ${token.token} is not in a LoRA file: export it with --format embedding and load both`]
  return Effect.succeed({ parts, notes })
}

const torchTensor = (name: string, spec: ParameterSpec, stored: StoredTensor): TensorToWrite => ({
  name,
  dtype: "F32",
  shape: spec.shape,
  data: toTorchLayout(spec, stored.data)
})

/** Each adapted module's A and B in torch layout, under the names `key` gives them. */
const adapterTensors = (part: LoraPart, read: ReadTensor, key: (m: AdaptableModule, which: "down" | "up") => string) =>
  Effect.gen(function*() {
    const out: Array<TensorToWrite> = []
    for (const m of part.modules) {
      const specs = loraSpecs(m, part.treatment.rank)
      out.push(torchTensor(key(m, "down"), specs.down, yield* read(`${part.component}.${specs.down.name}`)))
      out.push(torchTensor(key(m, "up"), specs.up, yield* read(`${part.component}.${specs.up.name}`)))
    }
    return out
  })

/** kohya's prefix of a component: `lora_unet_`, `lora_te_` (single encoder), `lora_te1_` / `lora_te2_`. */
const kohyaPrefix = (name: ComponentName, family: ModelManifest["family"]): string => {
  if (name === "unet") return "lora_unet_"
  if (family !== "sdxl") return "lora_te_"
  return name === "text_encoder" ? "lora_te1_" : "lora_te2_"
}

/** The value every part shares, or "Dynamic". */
const shared = (values: ReadonlyArray<number>): string => (new Set(values).size === 1 ? String(values[0]) : "Dynamic")

export const writeKohyaLora = (
  manifest: ModelManifest,
  parts: ReadonlyArray<LoraPart>,
  read: ReadTensor,
  file: string
): Effect.Effect<void, ExportError | SafetensorsError> =>
  Effect.gen(function*() {
    if (parts.some((p) => p.component === "vae")) {
      return yield* new ExportError({
        format: "kohya",
        reason: "kohya LoRA files have no VAE part; export the VAE LoRA with --format peft or merged with --format diffusers"
      })
    }
    const tensors: Array<TensorToWrite> = []
    for (const part of parts) {
      const key = (m: AdaptableModule) => `${kohyaPrefix(part.component, manifest.family)}${m.module.replaceAll(".", "_")}`
      for (const t of yield* adapterTensors(part, read, (m, which) => `${key(m)}.lora_${which}.weight`)) tensors.push(t)
      for (const m of part.modules) tensors.push({ name: `${key(m)}.alpha`, dtype: "F32", shape: [], data: Float32Array.of(part.treatment.alpha) })
    }
    yield* writeSafetensors(file, tensors, {
      format: "pt",
      ss_network_module: "networks.lora",
      ss_network_dim: shared(parts.map((p) => p.treatment.rank)),
      ss_network_alpha: shared(parts.map((p) => p.treatment.alpha))
    })
  })

export const writePeftLora = (
  parts: ReadonlyArray<LoraPart>,
  read: ReadTensor,
  file: string
): Effect.Effect<void, SafetensorsError> =>
  Effect.gen(function*() {
    const tensors: Array<TensorToWrite> = []
    const metadata: Record<string, unknown> = {}
    for (const part of parts) {
      const { component, treatment } = part
      for (const t of yield* adapterTensors(part, read, (m, which) => `${component}.${m.module}.lora_${which === "down" ? "A" : "B"}.weight`)) tensors.push(t)
      // LoraConfig arguments per component, keyed "<component>.<field>" as diffusers packs them.
      metadata[`${component}.r`] = treatment.rank
      metadata[`${component}.lora_alpha`] = treatment.alpha
      // The declared targets, which PEFT matches as name suffixes like sardine (full names would carry the
      // `text_model.` prefix that transformers 5's CLIPTextModel no longer has in its module names); with a
      // `*`, as the regular expression PEFT full-matches instead.
      metadata[`${component}.target_modules`] = treatment.targets.some((t) => t.includes("*")) ? patternsAsRegex(treatment.targets) : treatment.targets
      metadata[`${component}.init_lora_weights`] = "gaussian"
    }
    yield* writeSafetensors(file, tensors, { format: "pt", lora_adapter_metadata: JSON.stringify(metadata) })
  })
