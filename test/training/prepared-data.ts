import { Effect, Stream } from "effect"
import { syntheticSamples } from "../../adapters/data/synthetic/synthetic-samples.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { preparedDatasetWriter } from "../../framework/steps/prepared-dataset.ts"

/**
 * A prepare-data folder as the prepare-data step writes it, from the real synthetic SAR generator:
 * `n` scenes of `size` pixels, captions "<SAR> image of …" (the template inserting the token).
 */
export const prepareSyntheticData = (dir: string, options: { readonly n: number; readonly size: number; readonly seed: number }) =>
  Effect.gen(function*() {
    const writer = yield* preparedDatasetWriter(dir)
    const dataset = synthetic({ ...options, captionTemplate: "{token} image of {caption}" })
    yield* syntheticSamples(dataset, { token: "<SAR>" }).pipe(
      Stream.runForEach((item) => (item._tag === "Sample" ? writer.add(item.sample) : writer.skip(item.skipped)))
    )
    return yield* writer.finish
  })
