import type { ParameterSpec } from "../layers.ts"

/**
 * How each parameter of a freshly built model is drawn, as the reference libraries draw it:
 * diffusers models keep torch's per-module defaults, transformers' CLIP text models overwrite them
 * in `CLIPPreTrainedModel._init_weights`. Rules only; the draws are made by init-model.ts.
 */

export type Initialisation =
  | { readonly kind: "uniform"; readonly bound: number }
  | { readonly kind: "normal"; readonly std: number }
  | { readonly kind: "constant"; readonly value: number }

/** Inputs feeding one output of a Linear ([out, in]) or Conv2d ([out, in, kh, kw]) weight. */
const fanIn = (shape: ReadonlyArray<number>) => shape.slice(1).reduce((a, b) => a * b, 1)

const moduleOf = (name: string) => name.slice(0, name.lastIndexOf("."))

/**
 * torch's defaults (what diffusers' UNet2DConditionModel and AutoencoderKL get from `from_config`):
 * Linear and Conv2d weights kaiming_uniform_(a=√5), i.e. U(±gain·√(3 / fan_in)) with gain √(2 / (1 + 5)),
 * which is U(±1 / √fan_in); their biases U(±1 / √fan_in); GroupNorm / LayerNorm weight 1, bias 0.
 */
export const torchDefaultInitialisation = (specs: ReadonlyArray<ParameterSpec>): Map<string, Initialisation> => {
  const layouts = new Map(specs.map((s) => [s.name, s]))
  const out = new Map<string, Initialisation>()
  for (const spec of specs) {
    if (spec.layout !== "as-is") {
      out.set(spec.name, { kind: "uniform", bound: 1 / Math.sqrt(fanIn(spec.shape)) })
      continue
    }
    const weight = layouts.get(`${moduleOf(spec.name)}.weight`)
    if (spec.name.endsWith(".bias") && weight !== undefined && weight.layout !== "as-is") {
      out.set(spec.name, { kind: "uniform", bound: 1 / Math.sqrt(fanIn(weight.shape)) })
    } else if (spec.shape.length === 1 && spec.name.endsWith(".weight")) {
      out.set(spec.name, { kind: "constant", value: 1 })
    } else if (spec.shape.length === 1 && spec.name.endsWith(".bias")) {
      out.set(spec.name, { kind: "constant", value: 0 })
    } else {
      throw new Error(`${spec.name}: no torch default for a ${spec.shape.length}-d parameter outside a Linear, Conv2d or norm`)
    }
  }
  return out
}

export interface ClipTextSizes {
  readonly hiddenSize: number
  readonly numHiddenLayers: number
  /** `initializer_factor` of the config (1 unless a config says otherwise). */
  readonly factor: number
}

/**
 * transformers' CLIPTextModel / CLIPTextModelWithProjection: token and position embeddings
 * N(0, 0.02·f); q/k/v projections N(0, h^-½·(2L)^-½·f), the output projection N(0, h^-½·f);
 * fc1 N(0, (2h)^-½·f), fc2 N(0, h^-½·(2L)^-½·f); text_projection N(0, h^-½·f); every Linear bias 0;
 * LayerNorm weight 1, bias 0 (h hidden size, L layers, f initializer_factor).
 */
export const clipTextInitialisation = (specs: ReadonlyArray<ParameterSpec>, sizes: ClipTextSizes): Map<string, Initialisation> => {
  const { factor, hiddenSize: h, numHiddenLayers: layers } = sizes
  const inProjection = h ** -0.5 * (2 * layers) ** -0.5 * factor
  const normal = (std: number): Initialisation => ({ kind: "normal", std })
  const rules: ReadonlyArray<readonly [RegExp, Initialisation]> = [
    [/embeddings\.(token|position)_embedding\.weight$/, normal(0.02 * factor)],
    [/self_attn\.[qkv]_proj\.weight$/, normal(inProjection)],
    [/self_attn\.out_proj\.weight$/, normal(h ** -0.5 * factor)],
    [/mlp\.fc1\.weight$/, normal((2 * h) ** -0.5 * factor)],
    [/mlp\.fc2\.weight$/, normal(inProjection)],
    [/^text_projection\.weight$/, normal(h ** -0.5 * factor)],
    [/(_proj|fc[12])\.bias$/, { kind: "constant", value: 0 }],
    [/(layer_norm[12]|final_layer_norm)\.weight$/, { kind: "constant", value: 1 }],
    [/(layer_norm[12]|final_layer_norm)\.bias$/, { kind: "constant", value: 0 }]
  ]
  return new Map(specs.map((spec) => {
    const rule = rules.find(([pattern]) => pattern.test(spec.name))
    if (rule === undefined) throw new Error(`${spec.name}: not a parameter of transformers' CLIP text model`)
    return [spec.name, rule[1]]
  }))
}
