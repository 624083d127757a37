import { Effect } from "effect"
import { join } from "node:path"
import { autoencoderKlSpecs, decodeAutoencoderKlConfig } from "./autoencoder-kl.ts"
import { clipTextSpecs, decodeClipTextConfig } from "./clip-text-model.ts"
import type { ParameterSpec } from "./layers.ts"
import { ModelConfigError, readJsonFile } from "./model-config.ts"
import { withNodeFileSystem } from "./node-file-system.ts"
import { decodeUnet2DConditionConfig, unet2dConditionSpecs } from "./unet2d-condition.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"

/**
 * The parameters a model folder's `config.json` describes, named and shaped as the model that diffusers' /
 * transformers' `from_config` builds holds them: what a component has before any weights exist (an
 * architecture folder), computed from the config alone.
 */

/** The classes whose parameters sardine can list from a config. */
export const configClasses = ["UNet2DConditionModel", "AutoencoderKL", "CLIPTextModel", "CLIPTextModelWithProjection"] as const
export type ConfigClass = typeof configClasses[number]

const isConfigClass = (name: unknown): name is ConfigClass => configClasses.includes(name as ConfigClass)

/** A config's class: diffusers writes `_class_name`, transformers `architectures`. */
const classOf = (json: unknown): string | undefined => {
  if (typeof json !== "object" || json === null) return undefined
  const { _class_name: className, architectures } = json as { _class_name?: unknown; architectures?: unknown }
  if (typeof className === "string") return className
  return Array.isArray(architectures) && typeof architectures[0] === "string" ? architectures[0] : undefined
}

export interface ConfigParameters {
  readonly className: ConfigClass
  readonly file: string
  readonly specs: ReadonlyArray<ParameterSpec>
}

/**
 * The parameters of the model in `folder` from its `config.json`, or undefined when the folder has no config
 * or one of a class sardine does not build. `className` (from `model_index.json`) wins over the config's own.
 */
export const configParameters = (folder: string, className?: string): Effect.Effect<ConfigParameters | undefined, ModelConfigError> =>
  Effect.gen(function*() {
    const file = join(folder, "config.json")
    const present = yield* withNodeFileSystem((fs) => fs.stat(file)).pipe(
      Effect.map((info) => info.type === "File"),
      Effect.catchIf(isNotFound, () => Effect.succeed(false)),
      Effect.mapError((e) => new ModelConfigError({ file, reason: `cannot read (${fileProblem(e)})`, cause: e }))
    )
    if (!present) return undefined
    const json = yield* readJsonFile(file)
    const cls = className ?? classOf(json)
    if (!isConfigClass(cls)) return undefined
    switch (cls) {
      case "UNet2DConditionModel":
        return { className: cls, file, specs: unet2dConditionSpecs(yield* decodeUnet2DConditionConfig(json, file)) }
      case "AutoencoderKL":
        return { className: cls, file, specs: autoencoderKlSpecs(yield* decodeAutoencoderKlConfig(json, file)) }
      case "CLIPTextModel":
      case "CLIPTextModelWithProjection":
        return { className: cls, file, specs: clipTextSpecs(yield* decodeClipTextConfig(json, file, cls === "CLIPTextModelWithProjection")) }
    }
  })
