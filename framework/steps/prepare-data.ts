import { Effect, Stream } from "effect"
import type { StepContext } from "../runner/step-handler.ts"
import { classValues } from "../declaration/conditioning.ts"
import { Datasets } from "../services/datasets.ts"
import { preparedDatasetWriter } from "./prepared-dataset.ts"

/** Decodes, normalises and crops a declared dataset into the prepared-data format. */
export const prepareData = (context: StepContext<"prepare-data">) =>
  Effect.gen(function*() {
    const datasets = yield* Datasets
    const { dataset, token, conditioning } = context.step.config
    const total = dataset._tag === "synthetic" ? dataset.n : 0
    const writer = yield* preparedDatasetWriter(context.workDir, conditioning)
    const condition = conditioning === undefined ? undefined : {
      input: conditioning.input,
      column: conditioning.column,
      ...(conditioning.classes === undefined ? {} : { classValues: classValues(conditioning.classes) })
    }
    let done = 0
    yield* datasets.samples(dataset, { token, root: context.resolvePath("."), ...(condition === undefined ? {} : { condition }) }).pipe(
      Stream.runForEach((item) =>
        Effect.gen(function*() {
          if (item._tag === "Skipped") {
            yield* context.log(`skipped ${item.skipped.file}: ${item.skipped.reason}`)
            return yield* writer.skip(item.skipped)
          }
          yield* writer.add(item.sample)
          done += 1
          yield* context.progress(done, Math.max(total, done), "samples")
        })
      )
    )
    const index = yield* writer.finish
    yield* context.log(
      `${index.samples.length} samples of ${index.width}×${index.height}×${index.channels}` +
        (index.skipped.length > 0 ? `, ${index.skipped.length} files skipped (listed in index.json)` : "")
    )
  })
