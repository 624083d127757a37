import { GLCM_PROPERTIES, type GlcmProperty } from "./glcm.ts"

/**
 * The names of every number sardine measures, as typed constants: the key in evaluation.json and
 * MLflow, the label tables print, and which way is better. The trainer, the evaluation, the
 * comparisons and the report all name metrics through this file, never by display text.
 *
 * FID, KID and CMMD are computed on the image embeddings of the declared CLIP model (the
 * "FID_CLIP" of Kynkäänniemi et al. 2023 and Jayasumana et al. 2024), never on Inception
 * features: their names say CLIP.
 */

/** Lower distances are better, higher alignment is better, statistics should approach the real set's. */
export type MetricDirection = "lower" | "higher" | "closer"

export interface MetricDefinition {
  /** Key in evaluation.json's `estimates` and in MLflow. */
  readonly id: string
  /** What tables and charts print. */
  readonly label: string
  readonly direction: MetricDirection
}

const metric = <const Id extends string>(id: Id, label: string, direction: MetricDirection) => ({ id, label, direction })

/** The comparison metrics: one column each in the report's metric table, one line each in its verdicts. */
export const evaluationMetrics = {
  wasserstein: metric("amplitude.wasserstein", "Wasserstein-1", "lower"),
  ks: metric("amplitude.ks", "KS", "lower"),
  kl: metric("amplitude.kl", "KL", "lower"),
  js: metric("amplitude.js", "JS", "lower"),
  hellinger: metric("amplitude.hellinger", "Hellinger", "lower"),
  bhattacharyya: metric("amplitude.bhattacharyya", "Bhattacharyya", "lower"),
  glcmCanberra: metric("texture.canberra", "GLCM Canberra", "lower"),
  enl: metric("statistics.enl", "ENL", "closer"),
  cv: metric("statistics.cv", "CV", "closer"),
  clipSeen: metric("alignment.seen", "CLIP seen", "higher"),
  clipUnseen: metric("alignment.unseen", "CLIP unseen", "higher"),
  fidClip: metric("embedding.fid_clip", "FID_CLIP", "lower"),
  kidClip: metric("embedding.kid_clip", "KID_CLIP", "lower"),
  cmmd: metric("embedding.cmmd", "CMMD", "lower")
} as const

export type EvaluationMetricId = (typeof evaluationMetrics)[keyof typeof evaluationMetrics]["id"]

/** In table order. */
export const EVALUATION_METRICS: ReadonlyArray<MetricDefinition & { readonly id: EvaluationMetricId }> = Object.values(evaluationMetrics)

/** The amplitude distances' ids by their field in AmplitudeDistances. */
export const amplitudeMetricIds = {
  wasserstein: evaluationMetrics.wasserstein.id,
  ks: evaluationMetrics.ks.id,
  kl: evaluationMetrics.kl.id,
  js: evaluationMetrics.js.id,
  hellinger: evaluationMetrics.hellinger.id,
  bhattacharyya: evaluationMetrics.bhattacharyya.id
} as const

/** Per-image amplitude statistics averaged over the generated set; ENL and CV are also metrics. */
export const STATISTIC_NAMES = ["mean", "std", "cv", "enl", "gammaLooks"] as const
export type StatisticName = (typeof STATISTIC_NAMES)[number]
export const statisticEstimate = (name: StatisticName) =>
  metric(`statistics.${name}`, name === "gammaLooks" ? "looks (Gamma fit)" : name === "enl" || name === "cv" ? name.toUpperCase() : name, "closer")

/** A GLCM property of the generated set (mean over distances and angles); the texture table's cells. */
export const glcmEstimate = (property: GlcmProperty) => metric(`texture.${property}`, property, "closer")
export const GLCM_ESTIMATES = GLCM_PROPERTIES.map(glcmEstimate)

/** The CLIP alignment of one declared prompt (by its position), the alignment table's cells. */
export const promptAlignmentEstimate = (promptIndex: number) => metric(`alignment.prompt.${promptIndex}`, `CLIP of prompt ${promptIndex + 1}`, "higher")

/** MLflow keys of an estimate's interval and of the spread between training seeds. */
export const intervalKeys = (id: string) => ({ low: `${id}.low`, high: `${id}.high`, seedSpread: `${id}.seed_sd` })

/**
 * The training metrics the engines log per step (training-log.jsonl, MLflow): the diffusion loss,
 * the global gradient norm before clipping, throughput, and one learning rate per optimiser group;
 * at the steps `train.validationLoss` measures, the held-out diffusion loss.
 */
export const trainingMetrics = {
  loss: "loss",
  validationLoss: "validation_loss",
  gradNorm: "grad_norm",
  imagesPerSecond: "images_per_s",
  learningRatePrefix: "lr/"
} as const
export const learningRateMetric = (group: string) => `${trainingMetrics.learningRatePrefix}${group}`
