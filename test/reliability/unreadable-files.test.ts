/**
 * Only a missing file reads as "absent": a file that is there but cannot be read (here a folder where the
 * file should be, the fault a root-run test can produce; a permission error takes the same path) fails
 * naming it, where the readers once took it for "nothing saved". Real files in a fresh folder.
 * Cost: well under a second.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { mkdir, mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { readSaved } from "../../framework/cli/report.ts"
import { readFileStringIfPresent } from "../../framework/files/if-present.ts"
import { latestCheckpointFile, resumePoint } from "../../framework/runner/resume-point.ts"
import { reportRequestFile } from "../../framework/services/report-renderer.ts"
import { readTrainingLog, trainingLogFile } from "../../framework/steps/training-log.ts"

const freshFolder = Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-unreadable-")))

describe("a file that is there but unreadable is not absent", () => {
  it.effect("readFileStringIfPresent: none for a missing file, an error naming the path for an unreadable one", () =>
    Effect.gen(function*() {
      const folder = yield* freshFolder
      expect(yield* readFileStringIfPresent(join(folder, "missing.json"))).toEqual(Option.none())
      const error = yield* Effect.flip(readFileStringIfPresent(folder))
      expect(error.message).toContain(folder)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the report's saved request: absent is none, a folder in its place is a ReportError naming the file", () =>
    Effect.gen(function*() {
      const folder = yield* freshFolder
      expect(yield* readSaved(folder)).toBeUndefined()
      yield* Effect.promise(() => mkdir(join(folder, reportRequestFile)))
      const error = yield* Effect.flip(readSaved(folder))
      expect(error._tag).toBe("ReportError")
      expect(error.path).toBe(join(folder, reportRequestFile))
      expect(error.message).toContain("cannot read the saved report request")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a training's checkpoint record: absent resumes from nothing, unreadable is a CacheError naming it", () =>
    Effect.gen(function*() {
      const folder = yield* freshFolder
      expect(yield* resumePoint(folder)).toBeUndefined()
      yield* Effect.promise(() => mkdir(join(folder, latestCheckpointFile), { recursive: true }))
      const error = yield* Effect.flip(resumePoint(folder))
      expect(error._tag).toBe("CacheError")
      expect(error.path).toBe(join(folder, latestCheckpointFile))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the training log: absent is no line, unreadable is a JsonFileError naming it, lines cut short are dropped", () =>
    Effect.gen(function*() {
      const folder = yield* freshFolder
      expect(yield* readTrainingLog(folder)).toEqual([])
      yield* Effect.promise(() => writeFile(join(folder, trainingLogFile), `{"step":1,"loss":0.5}\n{"step":2,"lo`))
      expect(yield* readTrainingLog(folder)).toEqual([{ step: 1, loss: 0.5 }])
      const other = yield* freshFolder
      yield* Effect.promise(() => mkdir(join(other, trainingLogFile)))
      const error = yield* Effect.flip(readTrainingLog(other))
      expect(error._tag).toBe("JsonFileError")
      expect(error.file).toBe(join(other, trainingLogFile))
    }).pipe(Effect.provide(NodeContext.layer)))
})
