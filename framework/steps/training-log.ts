import { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import { join } from "node:path"
import { writeFileAtomic } from "../files/atomic-write.ts"
import { readFileStringIfPresent } from "../files/if-present.ts"
import { JsonFileError } from "./json-files.ts"

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

const failed = (file: string, what: string) => (e: { readonly message: string }) => new JsonFileError({ file, reason: `${what}: ${e.message}` })

export const appendTrainingLog = (
  dir: string,
  step: number,
  values: Readonly<Record<string, number>>
): Effect.Effect<void, JsonFileError, FileSystem.FileSystem> => {
  const file = join(dir, trainingLogFile)
  return Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(file, `${JSON.stringify({ step, ...values })}\n`, { flag: "a" })).pipe(
    Effect.mapError(failed(file, "cannot append to the training log"))
  )
}

/** The training log's lines; none when the step wrote no log. */
export const readTrainingLog = (dir: string): Effect.Effect<ReadonlyArray<TrainingLogLine>, JsonFileError, FileSystem.FileSystem> => {
  const file = join(dir, trainingLogFile)
  return readFileStringIfPresent(file).pipe(
    Effect.mapError(failed(file, "cannot read the training log")),
    Effect.map(Option.match({
      onNone: () => [],
      onSome: (text) =>
        text.split("\n").filter((l) => l.trim().length > 0).flatMap((l) => {
          try {
            return [JSON.parse(l) as TrainingLogLine]
          } catch {
            // A line cut short by a crash mid-write.
            return []
          }
        })
    }))
  )
}

export const finishTrainingLog = (dir: string): Effect.Effect<void, JsonFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const lines = yield* readTrainingLog(dir)
    const byStep = new Map<number, TrainingLogLine>()
    for (const line of lines) byStep.set(line.step, line)
    const text = [...byStep.values()].sort((a, b) => a.step - b.step).map((l) => JSON.stringify(l)).join("\n")
    const file = join(dir, trainingLogFile)
    yield* writeFileAtomic(file, text.length > 0 ? `${text}\n` : "").pipe(Effect.mapError(failed(file, "cannot write the training log")))
  })
