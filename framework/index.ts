/**
 * The public declaration API: what experiment files import as `from "sardine"`.
 * Declarations are data; `sardine validate` checks them and `sardine run` runs them.
 */
export { diffusers, scratch, trained, type ModelFamily } from "./declaration/base-model.ts"
export { clipModel, type ClipModelInput } from "./declaration/clip-model.ts"
export { learnedToken } from "./declaration/components.ts"
export { controlNet } from "./declaration/conditioning.ts"
export { dbWindow, imageFolder, meanStd, percentiles, sarlo80, synthetic, webDataset, type DatasetInput } from "./declaration/dataset.ts"
export { experiment, study, type ExperimentInput, type StudyInput } from "./declaration/experiment.ts"
export type { EvaluationInput } from "./declaration/evaluation.ts"
export type { GenerationInput } from "./declaration/generation.ts"
export { grid, type GridOptions } from "./declaration/grid.ts"
export type { TrainingInput } from "./declaration/training.ts"
export { frozen, full, lora, type TreatmentInput } from "./declaration/treatment.ts"
