import type { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import { join } from "node:path"
import { readFileStringIfPresent } from "../files/if-present.ts"
import { CacheError } from "./cache.ts"
import type { StepKind } from "../plan/step.ts"

/**
 * The step kinds that resume an interrupted run from their work folder: the trainings, which
 * checkpoint there. Every other step starts over in an emptied work folder, and its work folder
 * is removed when it fails (nothing in it would be reused).
 */
export const resumableKinds: ReadonlySet<StepKind> = new Set(["train", "train-clip"])

/**
 * Where every engine (tfjs, torch) records a training's last checkpoint in its work folder:
 * `checkpoints/latest.json`, `{"step": n, …}`, written last and atomically.
 */
export const latestCheckpointFile = join("checkpoints", "latest.json")

/**
 * The folder a multi-process training's launcher shares with its processes inside the work folder (the torch
 * worker's RANKS_FOLDER, launch.py: request, pids, errors), removed when the launcher ends. One there while no
 * process runs the step was left by a killed launcher: no part of what the training resumes from.
 */
export const ranksFolder = ".ranks"

/**
 * The training step a work folder resumes from; undefined when it holds no checkpoint (or a record that
 * is not one, as a crash mid-write would leave). A record that cannot be read fails, naming it.
 */
export const resumePoint = (workDir: string): Effect.Effect<number | undefined, CacheError, FileSystem.FileSystem> => {
  const file = join(workDir, latestCheckpointFile)
  return readFileStringIfPresent(file).pipe(
    Effect.mapError((e) => new CacheError({ path: file, reason: `cannot read the last checkpoint's record: ${e.message}` })),
    Effect.map(Option.flatMap((text) => {
      try {
        const step = (JSON.parse(text) as { step?: unknown }).step
        return typeof step === "number" && Number.isInteger(step) && step > 0 ? Option.some(step) : Option.none()
      } catch {
        return Option.none()
      }
    })),
    Effect.map(Option.getOrUndefined)
  )
}
