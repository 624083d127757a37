import { Schema } from "effect"
import { NonNegativeInt, only } from "../model-config.ts"

/**
 * Which of the training timesteps an inference run of N steps visits (`set_timesteps`), from the
 * scheduler config's `timestep_spacing` and `steps_offset` (Table 2 of "Common Diffusion Noise
 * Schedules and Sample Steps are Flawed"). The arithmetic is numpy's, so the picks are diffusers'.
 */

export const TimestepSpacing = only(Schema.Literal("linspace", "leading", "trailing"), "\"linspace\", \"leading\" and \"trailing\"")
export type TimestepSpacing = typeof TimestepSpacing.Type

/** The config fields, with the class's default spacing (DDPM and DDIM "leading", Euler "linspace"). */
export const timestepSpacingFields = (defaultSpacing: TimestepSpacing) => ({
  timestep_spacing: Schema.optionalWith(TimestepSpacing, { default: () => defaultSpacing }),
  steps_offset: Schema.optionalWith(NonNegativeInt, { default: () => 0 })
})

export interface SpacingConfig {
  readonly num_train_timesteps: number
  readonly timestep_spacing: TimestepSpacing
  readonly steps_offset: number
}

/** numpy's round: halves go to the even neighbour. */
export const roundHalfEven = (x: number): number => {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

const checkSteps = (steps: number, n: number) => {
  if (!Number.isInteger(steps) || steps < 1 || steps > n) {
    throw new Error(`${steps} inference steps: must be an integer from 1 to num_train_timesteps (${n})`)
  }
}

/** np.arange(start, stop, step) in float64: ⌈(stop − start)/step⌉ values start + i·((start + step) − start). */
const arange = (start: number, stop: number, step: number): Array<number> => {
  const delta = (start + step) - start
  return Array.from({ length: Math.max(Math.ceil((stop - start) / step), 0) }, (_, i) => start + i * delta)
}

/**
 * The timesteps of `set_timesteps(steps)`, in sampling order (descending). DDPM and DDIM round
 * "linspace" to integers (`"integer"`); Euler keeps them as float32 (`"float32"`), so they may be fractional.
 */
export const spacedTimesteps = (config: SpacingConfig, steps: number, rounding: "integer" | "float32"): Array<number> => {
  const n = config.num_train_timesteps
  checkSteps(steps, n)
  switch (config.timestep_spacing) {
    case "linspace": {
      // np.linspace(0, n − 1, steps) computes i·step and sets the last value to exactly n − 1.
      const step = steps > 1 ? (n - 1) / (steps - 1) : 0
      const values = Array.from({ length: steps }, (_, i) => (steps > 1 && i === steps - 1 ? n - 1 : i * step)).reverse()
      return values.map((v) => (rounding === "integer" ? roundHalfEven(v) : Math.fround(v)))
    }
    case "leading": {
      const ratio = Math.floor(n / steps)
      return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + config.steps_offset)
    }
    case "trailing":
      // np.round(np.arange(n, 0, −n/steps)) − 1.
      return arange(n, 0, -n / steps).map((t) => roundHalfEven(t) - 1)
  }
}

/**
 * The integer timesteps of the multistep solvers' `set_timesteps` (DPMSolverMultistepScheduler,
 * UniPCMultistepScheduler): "linspace" and "leading" space `steps + 1` points and drop the last (t = 0);
 * `last` is the first timestep past the schedule (num_train_timesteps unless λ is clipped).
 */
export const multistepTimesteps = (config: SpacingConfig, steps: number, last: number): Array<number> => {
  const n = config.num_train_timesteps
  checkSteps(steps, n)
  switch (config.timestep_spacing) {
    case "linspace": {
      const step = (last - 1) / steps
      return Array.from({ length: steps }, (_, i) => (i === 0 ? last - 1 : roundHalfEven((steps - i) * step)))
    }
    case "leading": {
      const ratio = Math.floor(last / (steps + 1))
      return Array.from({ length: steps }, (_, i) => (steps - i) * ratio + config.steps_offset)
    }
    case "trailing":
      return arange(last, 0, -n / steps).map((t) => roundHalfEven(t) - 1)
  }
}
