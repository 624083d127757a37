import { initialValues } from "../init/init-model.ts"
import { clipTextInitialisation, type Initialisation } from "../init/parameter-initialisation.ts"
import { clipModelSpecs, LOGIT_SCALE, type ClipModelPlan } from "../clip-model.ts"
import { clipTextSpecs } from "../clip-text-model.ts"
import { VISION_PREFIX } from "../clip-vision-model.ts"
import type { ParameterMap } from "../layers.ts"
import { tfjsTensor } from "../layout.ts"

/**
 * A CLIPModel's initial weights as transformers' `CLIPPreTrainedModel._init_weights` draws them
 * (f = CLIPConfig.initializer_factor, h a tower's width, L its layers):
 *   text tower and text_projection: as the CLIP text models (parameter-initialisation.ts);
 *   image tower: class_embedding N(0, h^-½·f), patch and position embeddings N(0, initializer_range·f),
 *   q/k/v N(0, h^-½·(2L)^-½·f), out_proj N(0, h^-½·f), fc1 N(0, (2h)^-½·f), fc2 N(0, h^-½·(2L)^-½·f),
 *   biases 0, layer norms 1 and 0;
 *   visual_projection N(0, h_vision^-½·f); logit_scale = logit_scale_init_value.
 * Each tensor draws from its own stream keyed by (seed, "clip", name), as init-model.ts does.
 */

const normal = (std: number): Initialisation => ({ kind: "normal", std })
const constant = (value: number): Initialisation => ({ kind: "constant", value })

export const clipModelInitialisation = (plan: ClipModelPlan): Map<string, Initialisation> => {
  const f = plan.config.initializer_factor
  const text = plan.text.config
  const vision = plan.vision
  const h = vision.hidden_size
  const inProjection = h ** -0.5 * (2 * vision.num_hidden_layers) ** -0.5 * f
  const visionRules: ReadonlyArray<readonly [RegExp, Initialisation]> = [
    [/embeddings\.class_embedding$/, normal(h ** -0.5 * f)],
    [/embeddings\.(patch|position)_embedding\.weight$/, normal(vision.initializer_range * f)],
    [/self_attn\.[qkv]_proj\.weight$/, normal(inProjection)],
    [/self_attn\.out_proj\.weight$/, normal(h ** -0.5 * f)],
    [/mlp\.fc1\.weight$/, normal((2 * h) ** -0.5 * f)],
    [/mlp\.fc2\.weight$/, normal(inProjection)],
    [/\.bias$/, constant(0)],
    [/(layer_norm[12]|pre_layrnorm|post_layernorm)\.weight$/, constant(1)]
  ]
  const rules = clipTextInitialisation(clipTextSpecs(plan.text), { hiddenSize: text.hidden_size, numHiddenLayers: text.num_hidden_layers, factor: f })
  for (const spec of clipModelSpecs(plan)) {
    if (rules.has(spec.name)) continue
    if (spec.name === "visual_projection.weight") rules.set(spec.name, normal(h ** -0.5 * f))
    else if (spec.name === LOGIT_SCALE) rules.set(spec.name, constant(plan.config.logit_scale_init_value))
    else if (spec.name.startsWith(`${VISION_PREFIX}.`)) {
      const rule = visionRules.find(([pattern]) => pattern.test(spec.name))
      if (rule === undefined) throw new Error(`${spec.name}: no initialisation rule`)
      rules.set(spec.name, rule[1])
    } else throw new Error(`${spec.name}: no initialisation rule`)
  }
  return rules
}

/** Freshly initialised parameters (tfjs layout), the same for the same seed on every backend. */
export const initialClipParameters = (plan: ClipModelPlan, seed: number): ParameterMap => {
  const rules = clipModelInitialisation(plan)
  return new Map(clipModelSpecs(plan).map((spec) => [spec.name, tfjsTensor(spec, initialValues(seed, "clip", spec, rules.get(spec.name)!))]))
}
