import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
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

/** The training step a work folder resumes from; undefined when it holds no checkpoint. */
export const resumePoint = (workDir: string): Effect.Effect<number | undefined> =>
  Effect.promise(() =>
    readFile(join(workDir, latestCheckpointFile), "utf8").then(
      (text) => {
        const step = (JSON.parse(text) as { step?: unknown }).step
        return typeof step === "number" && Number.isInteger(step) && step > 0 ? step : undefined
      },
      () => undefined
    ).catch(() => undefined)
  )
