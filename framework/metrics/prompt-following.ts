import { Effect } from "effect"
import { clipAlignment, type Embeddings } from "./embedding-distances.ts"
import { MetricInputError } from "./metric-input.ts"

/**
 * Prompt following (issue 22): whether an image follows *its* prompt rather than merely looking
 * like SAR. The absolute CLIP alignment of an image with its own prompt is high for any image
 * that looks like the training domain, whatever the prompt; these scores compare an image's
 * alignment with its own prompt against its alignment with the study's other prompts, so they
 * sit at chance (gap ≈ 0, retrieval ≈ k/P) for images that ignore their prompt.
 *
 * Per image, with s_p = 100 · cos(image, prompt p) over the P distinct prompts of the evaluation:
 * - gap: s_own − mean of s_p over the other P − 1 prompts;
 * - rank of its own prompt, and whether it lies in the first k (top-k retrieval).
 *
 * Ties: a prompt scoring exactly as high as the own prompt is broken by a uniformly random order,
 * and an image keeps the expectation: with g prompts strictly above and t tied with its own, its
 * rank is g + 1 + t/2 and its top-k hit is the probability min(1, max(0, (k − g)/(t + 1))). An image
 * that scores every prompt alike therefore retrieves at chance (k/P), never at 1 nor 0.
 * With fewer than 2 distinct prompts nothing is retrieved and there are no other prompts: the
 * score is undefined (absent, with that reason), never 0.
 */

export interface ImagePromptFollowing {
  /** s_own − mean over the other prompts of s_p, in CLIP-score units (100 · cos). */
  readonly gap: number
  /** Expected rank of its own prompt (1 = first), ties broken at random. */
  readonly rank: number
  /** Probability that its own prompt ranks first; 0 or 1 without ties. */
  readonly top1: number
  /** Probability that its own prompt ranks in the first k. */
  readonly topk: number
}

/** What an evaluation's prompt following was measured against: P distinct prompts and the (clipped) k. */
export interface RetrievalSetting {
  readonly prompts: number
  readonly k: number
}

/** Chance levels of top-1 and top-k retrieval: 1/P and k/P. */
export const chanceLevels = ({ k, prompts }: RetrievalSetting) => ({ top1: 1 / prompts, topk: k / prompts })

export type PromptFollowing =
  | { readonly _tag: "Measured"; readonly setting: RetrievalSetting; readonly images: ReadonlyArray<ImagePromptFollowing> }
  | { readonly _tag: "Absent"; readonly reason: string }

/** The distinct texts of `texts` in first-seen order, and each text's index among them. */
export const distinctPrompts = (texts: ReadonlyArray<string>): { readonly prompts: ReadonlyArray<string>; readonly own: ReadonlyArray<number> } => {
  const index = new Map<string, number>()
  const own = texts.map((text) => {
    const known = index.get(text)
    if (known !== undefined) return known
    index.set(text, index.size)
    return index.size - 1
  })
  return { prompts: [...index.keys()], own }
}

/** The rank and top-k hit of a score among the others', ties broken at random (see above). */
export const retrievalOf = (own: number, others: ReadonlyArray<number>, k: number): Pick<ImagePromptFollowing, "rank" | "top1" | "topk"> => {
  let above = 0
  let tied = 0
  for (const s of others) {
    if (s > own) above++
    else if (s === own) tied++
  }
  const hit = (within: number) => Math.min(1, Math.max(0, (within - above) / (tied + 1)))
  return { rank: above + 1 + tied / 2, top1: hit(1), topk: hit(k) }
}

/**
 * Scores of every image with every prompt (`prompts`: one embedding per distinct prompt),
 * `own[i]` the row of image i's prompt in `prompts`; k is clipped to the number of prompts.
 * Returns also the image × prompt score matrix (row-major), whose own-prompt entries are the
 * absolute alignments.
 */
export const measurePromptFollowing = (
  images: Embeddings,
  prompts: Embeddings,
  own: ReadonlyArray<number>,
  k: number
): Effect.Effect<{ readonly scores: Float64Array; readonly following: PromptFollowing }, MetricInputError> =>
  Effect.gen(function*() {
    const count = images.count
    const wrong = own.findIndex((p) => !Number.isInteger(p) || p < 0 || p >= prompts.count)
    if (own.length !== count || wrong >= 0) {
      return yield* new MetricInputError({
        input: `${images.name} / ${prompts.name}`,
        reason: own.length !== count
          ? `${count} images but ${own.length} own-prompt indices`
          : `image ${wrong}'s own prompt ${own[wrong]} is not one of the ${prompts.count} prompts`
      })
    }
    const scores = new Float64Array(count * prompts.count)
    for (let p = 0; p < prompts.count; p++) {
      // Each prompt against every image, by the same formula as the absolute alignment.
      const row = prompts.data.subarray(p * prompts.dim, (p + 1) * prompts.dim)
      const tiled = new Float32Array(count * prompts.dim)
      for (let i = 0; i < count; i++) tiled.set(row, i * prompts.dim)
      const column = yield* clipAlignment(images, { name: `${prompts.name} [${p}]`, count, dim: prompts.dim, data: tiled })
      for (let i = 0; i < count; i++) scores[i * prompts.count + p] = column[i]!
    }
    if (prompts.count < 2) {
      return {
        scores,
        following: {
          _tag: "Absent",
          reason: `the evaluation has ${prompts.count} distinct prompt${
            prompts.count === 1 ? "" : "s"
          }; prompt following compares an image's own prompt with others, so it needs at least 2`
        }
      } as const
    }
    const setting = { prompts: prompts.count, k: Math.min(k, prompts.count) }
    const measured = own.map((mineAt, i): ImagePromptFollowing => {
      const row = Array.from(scores.subarray(i * prompts.count, (i + 1) * prompts.count))
      const mine = row[mineAt]!
      const others = row.filter((_, p) => p !== mineAt)
      return { gap: mine - others.reduce((a, b) => a + b, 0) / others.length, ...retrievalOf(mine, others, setting.k) }
    })
    return { scores, following: { _tag: "Measured", setting, images: measured } } as const
  })

/**
 * Which prompts a group of images retrieves first: per prompt, the mean over `images` of its share of
 * each image's first place (1 for the prompt scoring highest, split evenly among prompts tied there,
 * the tie rule above). `scores` is the image × prompt matrix of measurePromptFollowing. The share of
 * the images' own prompt is their mean top-1.
 */
export const firstPlaceShares = (scores: Float64Array, prompts: number, images: ReadonlyArray<number>): Float64Array => {
  const shares = new Float64Array(prompts)
  for (const i of images) {
    const row = scores.subarray(i * prompts, (i + 1) * prompts)
    const best = Math.max(...row)
    const first = row.filter((s) => s === best).length
    for (let p = 0; p < prompts; p++) if (row[p] === best) shares[p]! += 1 / first / images.length
  }
  return shares
}
