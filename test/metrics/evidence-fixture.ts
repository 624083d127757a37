/**
 * Small synthetic evaluations for the statistics tests: speckled amplitude images (Gamma
 * intensity, a number of looks per prompt and strategy), CLIP-like scores and embeddings, measured
 * by the evaluation's own code (measureImage, measureEvaluation).
 */
import { Effect } from "effect"
import { SeededRandom } from "../../adapters/data/seeded-random.ts"
import type { EvaluationEvidence, GeneratedImage, MeasuredEvaluation } from "../../framework/metrics/evaluation-evidence.ts"
import { measureEvaluation, measureImage } from "../../framework/metrics/evaluation-evidence.ts"
import type { SampleImage } from "../../framework/metrics/metric-input.ts"

export const texture = { levels: 16, distances: [1], anglesDegrees: [0, 90] }

/** A side × side amplitude image of `looks`-look speckle over a ramp of reflectivity. */
export const speckleImage = (random: SeededRandom, side: number, looks: number, name: string): SampleImage => {
  const data = new Float32Array(side * side)
  for (let p = 0; p < data.length; p++) {
    const reflectivity = 0.5 + (p % side) / side
    data[p] = Math.sqrt((reflectivity * random.gamma(looks)) / looks)
  }
  return { name, width: side, height: side, data }
}

export interface StrategyShape {
  readonly prompts: ReadonlyArray<{ readonly split: "seen" | "unseen"; readonly looks: number; readonly clip: number }>
  readonly seeds: ReadonlyArray<number>
  readonly side: number
  /** Added to every image's looks (a better strategy: speckle closer to the reference's). */
  readonly extraLooks?: number
  readonly clipShift?: number
  readonly embeddingShift?: number
  readonly dim?: number
}

export const generatedImages = (shape: StrategyShape, seed: number): Effect.Effect<ReadonlyArray<GeneratedImage>, unknown> =>
  Effect.gen(function*() {
    const random = new SeededRandom(seed, 11)
    const dim = shape.dim ?? 6
    const out: Array<GeneratedImage> = []
    for (const [promptIndex, prompt] of shape.prompts.entries()) {
      for (const s of shape.seeds) {
        const image = speckleImage(random, shape.side, prompt.looks + (shape.extraLooks ?? 0), `p${promptIndex}-s${s}`)
        out.push({
          promptIndex,
          prompt: `prompt ${promptIndex}`,
          split: prompt.split,
          seed: s,
          sample: 0,
          clip: prompt.clip + (shape.clipShift ?? 0) + 3 * random.normal(),
          embedding: Float32Array.from({ length: dim }, (_, k) => (k === 0 ? shape.embeddingShift ?? 0 : 0) + random.normal()),
          measured: yield* measureImage(image, texture)
        })
      }
    }
    return out
  })

export interface Reference {
  readonly images: ReadonlyArray<SampleImage>
  readonly embeddings: { readonly count: number; readonly dim: number; readonly data: Float32Array }
}

export const referenceSet = (count: number, side: number, looks: number, dim = 6): Reference => {
  const random = new SeededRandom(99, 7)
  return {
    images: Array.from({ length: count }, (_, i) => speckleImage(random, side, looks, `real-${i}`)),
    embeddings: { count, dim, data: Float32Array.from({ length: count * dim }, () => random.normal()) }
  }
}

export const measure = (generated: ReadonlyArray<GeneratedImage>, reference: Reference): Effect.Effect<MeasuredEvaluation, unknown> =>
  Effect.gen(function*() {
    const measuredReference = yield* Effect.forEach(reference.images, (image) => measureImage(image, texture))
    return yield* measureEvaluation({
      generated,
      reference: measuredReference,
      referenceEmbeddings: reference.embeddings,
      referenceKey: "reference",
      domain: { kind: "amplitude" },
      bins: 32,
      klPseudoCount: 1,
      texture
    })
  })

export const evidenceOf = (shape: StrategyShape, seed: number, reference: Reference): Effect.Effect<EvaluationEvidence, unknown> =>
  Effect.map(Effect.flatMap(generatedImages(shape, seed), (g) => measure(g, reference)), (m) => m.evidence)
