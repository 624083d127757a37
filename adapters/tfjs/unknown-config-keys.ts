import { type Sampler, schedulerClasses } from "../../framework/declaration/generation.ts"
import type { EngineName } from "../../framework/services/engine.ts"
import { schedulerInitKeys } from "./scheduler-init-keys.ts"

/**
 * The library versions whose config keys the tfjs engine's schemas follow (tools/make_config_key_goldens.py;
 * test/models/config-keys.test.ts checks both lists against them).
 */
export const pinnedVersions = { diffusers: "0.42.1", transformers: "5.24.0" } as const

/**
 * Per config class, the keys the pinned library itself ignores without a warning, or handles outside the model:
 * diffusers drops a scheduler config's keys of the compatible schedulers that saved it (PNDM's `skip_prk_steps`
 * in SD 1.x's); transformers keeps PretrainedConfig's generic keys (loading, outputs, labels), reads
 * `torch_dtype` as `dtype`, and keeps, unread, transformers 4's CLIP `dropout`, its PretrainedConfig's other
 * generic keys and the generation parameters configs saved whole carry (the same list for every CLIP config).
 * Keys starting with `_` are private to both. Any other key the tfjs engine's schema for the config does not name — a newer version's
 * option, which the pinned one would ignore with a warning — is refused on a plan of either engine (config-refusals.ts): the
 * tfjs engine's schemas name every key the pinned classes take (test/models/config-keys.test.ts), and the torch engine
 * hands the config to those classes.
 */
/** What the pinned transformers keeps unread in any of the CLIP configs (CLIPConfig, CLIPTextConfig, CLIPVisionConfig). */
// dprint-ignore: one line
const transformersIgnored = ["add_cross_attention", "architectures", "assistant_confidence_threshold", "assistant_lookbehind", "bad_words_ids", "begin_suppress_tokens", "chunk_size_feed_forward", "cross_attention_hidden_size", "decoder_start_token_id", "diversity_penalty", "do_sample", "dropout", "dtype", "early_stopping", "encoder_no_repeat_ngram_size", "encoder_repetition_penalty", "epsilon_cutoff", "eta_cutoff", "exponential_decay_length_penalty", "finetuning_task", "forced_bos_token_id", "forced_eos_token_id", "id2label", "is_decoder", "is_encoder_decoder", "label2id", "length_penalty", "max_length", "min_length", "model_type", "no_repeat_ngram_size", "num_assistant_tokens", "num_assistant_tokens_schedule", "num_beam_groups", "num_beams", "num_return_sequences", "output_attentions", "output_hidden_states", "output_scores", "prefix", "problem_type", "pruned_heads", "remove_invalid_values", "repetition_penalty", "return_dict", "return_dict_in_generate", "sep_token_id", "suppress_tokens", "target_lookbehind", "task_specific_params", "temperature", "tie_encoder_decoder", "tie_word_embeddings", "tokenizer_class", "top_k", "top_p", "torch_dtype", "torchscript", "transformers_version", "typical_p", "use_bfloat16", "use_cache"] as const

// dprint-ignore: one class a line
export const ignoredConfigKeys = {
  UNet2DConditionModel: [],
  AutoencoderKL: [],
  ControlNetModel: [],
  DDPMScheduler: ["algorithm_type", "disable_corrector", "euler_at_final", "final_sigmas_type", "flow_shift", "interpolation_type", "lambda_min_clipped", "lower_order_final", "predict_x0", "rho", "set_alpha_to_one", "shift_terminal", "sigma_data", "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p", "solver_type", "time_shift_type", "timestep_type", "use_beta_sigmas", "use_dynamic_shifting", "use_exponential_sigmas", "use_flow_sigmas", "use_karras_sigmas", "use_lu_lambdas"],
  DDIMScheduler: ["algorithm_type", "disable_corrector", "euler_at_final", "final_sigmas_type", "flow_shift", "interpolation_type", "lambda_min_clipped", "lower_order_final", "predict_x0", "rho", "shift_terminal", "sigma_data", "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p", "solver_type", "time_shift_type", "timestep_type", "use_beta_sigmas", "use_dynamic_shifting", "use_exponential_sigmas", "use_flow_sigmas", "use_karras_sigmas", "use_lu_lambdas", "variance_type"],
  EulerDiscreteScheduler: ["algorithm_type", "clip_sample", "clip_sample_range", "disable_corrector", "dynamic_thresholding_ratio", "euler_at_final", "flow_shift", "lambda_min_clipped", "lower_order_final", "predict_x0", "rho", "sample_max_value", "set_alpha_to_one", "shift_terminal", "sigma_data", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p", "solver_type", "thresholding", "time_shift_type", "use_dynamic_shifting", "use_flow_sigmas", "use_lu_lambdas", "variance_type"],
  EulerAncestralDiscreteScheduler: ["algorithm_type", "clip_sample", "clip_sample_range", "disable_corrector", "dynamic_thresholding_ratio", "euler_at_final", "final_sigmas_type", "flow_shift", "interpolation_type", "lambda_min_clipped", "lower_order_final", "predict_x0", "rho", "sample_max_value", "set_alpha_to_one", "shift_terminal", "sigma_data", "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p", "solver_type", "thresholding", "time_shift_type", "timestep_type", "use_beta_sigmas", "use_dynamic_shifting", "use_exponential_sigmas", "use_flow_sigmas", "use_karras_sigmas", "use_lu_lambdas", "variance_type"],
  HeunDiscreteScheduler: ["algorithm_type", "disable_corrector", "dynamic_thresholding_ratio", "euler_at_final", "final_sigmas_type", "flow_shift", "interpolation_type", "lambda_min_clipped", "lower_order_final", "predict_x0", "rescale_betas_zero_snr", "rho", "sample_max_value", "set_alpha_to_one", "shift_terminal", "sigma_data", "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p", "solver_type", "thresholding", "time_shift_type", "timestep_type", "use_dynamic_shifting", "use_flow_sigmas", "use_lu_lambdas", "variance_type"],
  DPMSolverMultistepScheduler: ["clip_sample", "clip_sample_range", "disable_corrector", "interpolation_type", "predict_x0", "rho", "set_alpha_to_one", "shift_terminal", "sigma_data", "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_p", "timestep_type"],
  UniPCMultistepScheduler: ["algorithm_type", "clip_sample", "clip_sample_range", "euler_at_final", "interpolation_type", "lambda_min_clipped", "rho", "set_alpha_to_one", "sigma_data", "sigma_schedule", "skip_prk_steps", "timestep_type", "use_lu_lambdas", "variance_type"],
  CLIPTextConfig: transformersIgnored,
  CLIPVisionConfig: transformersIgnored,
  CLIPConfig: transformersIgnored
} as const satisfies Readonly<Record<string, ReadonlyArray<string>>>

export type ConfigClass = keyof typeof ignoredConfigKeys

/** The diffusers class a sampler's scheduler is (generation.ts), as a config class. */
export const schedulerConfigClass = (sampler: Sampler): ConfigClass => schedulerClasses[sampler]

/**
 * The keys of a parsed config that are neither `named` (fields of the tfjs engine's schema for it: implemented,
 * or refused unless they hold the value it computes with), private (`_class_name`, `_diffusers_version`, …)
 * nor ignored by the pinned library for `className`: its own list, and the keys of the scheduler class that
 * saved the config (`_class_name`), which diffusers drops when another class loads it.
 */
export const unknownConfigKeys = (json: unknown, named: Readonly<Record<string, unknown>>, className: ConfigClass): ReadonlyArray<string> => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return []
  const savedBy = (json as { readonly _class_name?: unknown })._class_name
  const ignored: ReadonlyArray<string> = [
    ...ignoredConfigKeys[className],
    ...(typeof savedBy === "string" && savedBy !== className && Object.hasOwn(schedulerInitKeys, savedBy) ? schedulerInitKeys[savedBy]! : [])
  ]
  return Object.keys(json).filter((key) => !key.startsWith("_") && !Object.hasOwn(named, key) && !ignored.includes(key))
}

/** Which library's class reads a config of `className`. */
export const libraryOf = (className: ConfigClass): keyof typeof pinnedVersions => (className.startsWith("CLIP") ? "transformers" : "diffusers")

/** Why `engine`'s plan (or the tfjs engine's CLIP folder reader) refuses `key` of a config of `className`, and what to do. */
export const unknownKeyReason = (key: string, className: ConfigClass, engine: EngineName): string => {
  const library = `${libraryOf(className)} ${pinnedVersions[libraryOf(className)]}`
  return `${key}: the ${engine} engine refuses a key it would ignore: ${className} of the pinned ${library} takes no such key ` +
    `(a newer version's option?); remove it, or use a config ${library} writes`
}
