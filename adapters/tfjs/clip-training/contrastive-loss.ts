import * as tf from "@tensorflow/tfjs-core"

/**
 * CLIP's symmetric InfoNCE loss (Radford et al. 2021; transformers' `clip_loss`): cross-entropy of
 * each image over the batch's texts and of each text over its images, averaged. Synthetic captions
 * repeat ("a harbour with two ships" describes many scenes), so the target of a row is spread evenly
 * over every pair with the same caption instead of marking equal captions as negatives; with
 * distinct captions this is exactly CLIP's loss.
 */

/** [B, B] targets: 1 / (pairs sharing caption i) where captions i and j are equal, else 0. Symmetric. */
export const captionTargets = (captions: ReadonlyArray<string>): Float32Array => {
  const n = captions.length
  const out = new Float32Array(n * n)
  for (let i = 0; i < n; i++) {
    let same = 0
    for (let j = 0; j < n; j++) if (captions[j] === captions[i]) same++
    for (let j = 0; j < n; j++) if (captions[j] === captions[i]) out[i * n + j] = 1 / same
  }
  return out
}

/** −Σⱼ targets·log softmax(logits) per row, averaged over rows. */
const softCrossEntropy = (logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar => tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1)))

/** The loss of unit image and text embeddings [B, D] whose logits are `logits` = exp(logit_scale) · image·textᵀ. */
export const contrastiveLoss = (logitsPerImage: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar =>
  tf.tidy(() => tf.div(tf.add(softCrossEntropy(logitsPerImage, targets), softCrossEntropy(tf.transpose(logitsPerImage), targets)), 2))

export interface RetrievalAccuracy {
  /** Share of images whose best-scoring text of the batch carries their caption. */
  readonly imageToText: number
  /** Share of texts whose best-scoring image of the batch carries their caption. */
  readonly textToImage: number
}

/** Top-1 in-batch retrieval in both directions, from the [B, B] logits; retrieving a pair with the same caption is right. */
export const retrievalAccuracy = (logitsPerImage: Float32Array, captions: ReadonlyArray<string>): RetrievalAccuracy => {
  const n = captions.length
  const best = (at: (a: number, b: number) => number, row: number) => {
    let arg = 0
    for (let k = 1; k < n; k++) if (at(row, k) > at(row, arg)) arg = k
    return arg
  }
  let imageToText = 0
  let textToImage = 0
  for (let i = 0; i < n; i++) {
    if (captions[best((r, c) => logitsPerImage[r * n + c]!, i)] === captions[i]) imageToText++
    if (captions[best((r, c) => logitsPerImage[c * n + r]!, i)] === captions[i]) textToImage++
  }
  return { imageToText: imageToText / n, textToImage: textToImage / n }
}

/**
 * The accuracy a model guessing at random would reach on this batch: the mean share of pairs
 * sharing a row's caption (1 / B when every caption differs).
 */
export const chanceAccuracy = (captions: ReadonlyArray<string>): number => {
  const n = captions.length
  let sum = 0
  for (const c of captions) sum += captions.filter((d) => d === c).length / n
  return sum / n
}
