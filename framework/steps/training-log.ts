import { Effect } from "effect"
import { appendFile, readFile } from "node:fs/promises"
import { writeFileAtomic } from "../files/atomic-write.ts"
import { join } from "node:path"

/**
 * `training-log.jsonl` in a train step's output: one `{"step": n, "<metric>": value, …}` line per
 * training step, what reports draw training curves from. Lines are appended as training goes;
 * a resumed run repeats the steps after its last checkpoint, so `finish` keeps the last line of
 * each step, in step order.
 */
export const trainingLogFile = "training-log.jsonl"

export interface TrainingLogLine {
  readonly step: number
  readonly [metric: string]: number
}

export const appendTrainingLog = (dir: string, step: number, values: Readonly<Record<string, number>>) =>
  Effect.promise(() => appendFile(join(dir, trainingLogFile), `${JSON.stringify({ step, ...values })}\n`))

export const readTrainingLog = (dir: string): Effect.Effect<ReadonlyArray<TrainingLogLine>> =>
  Effect.promise(() =>
    readFile(join(dir, trainingLogFile), "utf8").then(
      (text) =>
        text.split("\n").filter((l) => l.trim().length > 0).flatMap((l) => {
          try {
            return [JSON.parse(l) as TrainingLogLine]
          } catch {
            // A line cut short by a crash mid-write.
            return []
          }
        }),
      () => []
    )
  )

export const finishTrainingLog = (dir: string) =>
  Effect.gen(function*() {
    const lines = yield* readTrainingLog(dir)
    const byStep = new Map<number, TrainingLogLine>()
    for (const line of lines) byStep.set(line.step, line)
    const text = [...byStep.values()].sort((a, b) => a.step - b.step).map((l) => JSON.stringify(l)).join("\n")
    const file = join(dir, trainingLogFile)
    yield* writeFileAtomic(file, text.length > 0 ? `${text}\n` : "").pipe(Effect.orDie)
  })
