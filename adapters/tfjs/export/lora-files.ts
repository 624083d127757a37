import { Effect } from "effect"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { writeSafetensors, type TensorToWrite } from "../../safetensors/safetensors-writer.ts"
import type { ParameterSpec } from "../layers.ts"
import { toTorchLayout } from "../layout.ts"
import type { ComponentName } from "../training/adapted-pipeline.ts"
import type { LoraModule } from "../training/lora.ts"
import type { ModelManifest, StoredTensor } from "../training/trained-model-files.ts"
import { ExportError } from "./export-error.ts"

/**
 * A trained model's LoRA adapters in the two layouts other tools load (DESIGN §5):
 *   kohya / A1111 / ComfyUI: `lora_unet_<module with dots as underscores>.lora_down.weight` [r, in(, kh, kw)],
 *     `.lora_up.weight` [out, r(, 1, 1)], `.alpha` (scale = alpha / r); text encoders `lora_te_` (one
 *     encoder) or `lora_te1_` / `lora_te2_` (SDXL).
 *   diffusers / PEFT: `<component>.<module>.lora_A.weight` / `.lora_B.weight`, with rank, alpha and target
 *     modules in the `lora_adapter_metadata` JSON as diffusers' `save_lora_weights` writes it.
 * Weights are torch layout, float32.
 */

type ReadTensor = (name: string) => Effect.Effect<StoredTensor, SafetensorsError>

interface LoraComponent {
  readonly name: ComponentName
  readonly rank: number
  readonly alpha: number
  readonly targets: ReadonlyArray<string>
  readonly modules: ReadonlyArray<LoraModule>
}

const loraComponents = (manifest: ModelManifest): Array<LoraComponent> =>
  Object.entries(manifest.components).flatMap(([name, part]) =>
    part?.kind === "lora" ? [{ name: name as ComponentName, rank: part.rank, alpha: part.alpha, targets: part.targets, modules: part.modules }] : [])

/** The torch-layout specs of a module's A (down) and B (up). */
const loraSpecs = (m: LoraModule, rank: number): { down: ParameterSpec; up: ParameterSpec } =>
  m.kind === "linear"
    ? { down: { name: "down", shape: [rank, m.inFeatures], layout: "linear" }, up: { name: "up", shape: [m.outFeatures, rank], layout: "linear" } }
    : {
      down: { name: "down", shape: [rank, m.inFeatures, m.kernel[0], m.kernel[1]], layout: "conv" },
      up: { name: "up", shape: [m.outFeatures, rank, 1, 1], layout: "conv" }
    }

const torchTensor = (name: string, spec: ParameterSpec, stored: StoredTensor): TensorToWrite => ({
  name,
  dtype: "F32",
  shape: spec.shape,
  data: toTorchLayout(spec, stored.data)
})

const nothingToExport = (format: string, manifest: ModelManifest) =>
  new ExportError({
    format,
    reason: `the model has no LoRA (components: ${Object.entries(manifest.components).map(([n, p]) => `${n} ${p?.kind}`).join(", ") || "none"}); ` +
      "export fully trained weights with --format diffusers"
  })

/** kohya's prefix of a component: `lora_unet_`, `lora_te_` (single encoder), `lora_te1_` / `lora_te2_`. */
const kohyaPrefix = (name: ComponentName, manifest: ModelManifest): string => {
  if (name === "unet") return "lora_unet_"
  if (manifest.family !== "sdxl") return "lora_te_"
  return name === "text_encoder" ? "lora_te1_" : "lora_te2_"
}

export const writeKohyaLora = (manifest: ModelManifest, read: ReadTensor, file: string): Effect.Effect<void, ExportError | SafetensorsError> =>
  Effect.gen(function*() {
    const components = loraComponents(manifest)
    if (components.length === 0) return yield* nothingToExport("kohya", manifest)
    if (components.some((c) => c.name === "vae")) {
      return yield* new ExportError({ format: "kohya", reason: "kohya LoRA files have no VAE part; export the VAE LoRA with --format peft or merged with --format diffusers" })
    }
    const tensors: Array<TensorToWrite> = []
    for (const c of components) {
      for (const m of c.modules) {
        const key = `${kohyaPrefix(c.name, manifest)}${m.module.replaceAll(".", "_")}`
        const specs = loraSpecs(m, c.rank)
        tensors.push(torchTensor(`${key}.lora_down.weight`, specs.down, yield* read(`${c.name}.${m.module}.lora_A.weight`)))
        tensors.push(torchTensor(`${key}.lora_up.weight`, specs.up, yield* read(`${c.name}.${m.module}.lora_B.weight`)))
        tensors.push({ name: `${key}.alpha`, dtype: "F32", shape: [], data: Float32Array.of(c.alpha) })
      }
    }
    const first = components[0]
    yield* writeSafetensors(file, tensors, {
      format: "pt",
      ss_network_module: "networks.lora",
      ss_network_dim: String(first.rank),
      ss_network_alpha: String(first.alpha)
    })
  })

export const writePeftLora = (manifest: ModelManifest, read: ReadTensor, file: string): Effect.Effect<void, ExportError | SafetensorsError> =>
  Effect.gen(function*() {
    const components = loraComponents(manifest)
    if (components.length === 0) return yield* nothingToExport("peft", manifest)
    const tensors: Array<TensorToWrite> = []
    const metadata: Record<string, unknown> = {}
    for (const c of components) {
      for (const m of c.modules) {
        const specs = loraSpecs(m, c.rank)
        tensors.push(torchTensor(`${c.name}.${m.module}.lora_A.weight`, specs.down, yield* read(`${c.name}.${m.module}.lora_A.weight`)))
        tensors.push(torchTensor(`${c.name}.${m.module}.lora_B.weight`, specs.up, yield* read(`${c.name}.${m.module}.lora_B.weight`)))
      }
      // LoraConfig arguments per component, keyed "<component>.<field>" as diffusers packs them.
      metadata[`${c.name}.r`] = c.rank
      metadata[`${c.name}.lora_alpha`] = c.alpha
      // The declared targets, which PEFT matches as name suffixes like sardine: full names would carry the
      // `text_model.` prefix that transformers 5's CLIPTextModel no longer has in its module names.
      metadata[`${c.name}.target_modules`] = c.targets
      metadata[`${c.name}.init_lora_weights`] = "gaussian"
    }
    yield* writeSafetensors(file, tensors, { format: "pt", lora_adapter_metadata: JSON.stringify(metadata) })
  })
