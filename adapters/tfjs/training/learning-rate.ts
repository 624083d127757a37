import type { Training } from "../../../framework/declaration/training.ts"

/**
 * The multiplier of the declared learning rates before optimiser step `step` (0-based), as
 * transformers' `get_constant_schedule_with_warmup` / `get_cosine_schedule_with_warmup`
 * (half a cosine): linear warm-up from 0, then constant or cosine decay towards 0 at `total` steps.
 */
export const learningRateFactor = (schedule: Training["lrSchedule"], step: number, total: number): number => {
  if (step < schedule.warmupSteps) return step / Math.max(1, schedule.warmupSteps)
  if (schedule.decay === "constant") return 1
  const progress = (step - schedule.warmupSteps) / Math.max(1, total - schedule.warmupSteps)
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)))
}
