import { Effect, Stream } from "effect"
import { syntheticSamples } from "../../adapters/data/synthetic/synthetic-samples.ts"
import { classValues, syntheticClasses } from "../../framework/declaration/conditioning.ts"
import type { SyntheticDataset } from "../../framework/declaration/dataset.ts"
import { preparedDatasetWriter } from "../../framework/steps/prepared-dataset.ts"

/** The prepare-data step's folder for a ControlNet on the synthetic label maps (one-hot, the synthetic classes). */
export const prepareConditioned = (dir: string, dataset: SyntheticDataset, token?: string) =>
  Effect.gen(function*() {
    const writer = yield* preparedDatasetWriter(dir, { input: "label-map", column: "conditioning_file_name", classes: syntheticClasses })
    const condition = { input: "label-map" as const, column: "conditioning_file_name", classValues: classValues(syntheticClasses) }
    yield* syntheticSamples(dataset, { ...(token === undefined ? {} : { token }), condition }).pipe(
      Stream.runForEach((item) => (item._tag === "Sample" ? writer.add(item.sample) : writer.skip(item.skipped)))
    )
    return yield* writer.finish
  })
