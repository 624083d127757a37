import * as tf from "@tensorflow/tfjs-core"

/**
 * Prepared samples (HWC in [-1, 1]) as one NHWC batch for a VAE with `channels` input channels:
 * single-band SAR is repeated on every channel (a grey RGB image), as pretrained VAEs expect.
 */
export const imageBatch = (
  images: ReadonlyArray<{ readonly pixels: Float32Array; readonly height: number; readonly width: number; readonly channels: number }>,
  channels: number
): tf.Tensor4D => {
  const [first] = images
  if (first === undefined) throw new Error("an empty batch of images")
  const { height, width } = first
  const out = new Float32Array(images.length * height * width * channels)
  images.forEach((image, b) => {
    if (image.height !== height || image.width !== width) {
      throw new Error(`samples of one batch must have one size (${width}×${height} and ${image.width}×${image.height})`)
    }
    if (image.channels !== channels && image.channels !== 1) {
      throw new Error(`a ${image.channels}-channel sample cannot feed a VAE with ${channels} input channels`)
    }
    const base = b * height * width * channels
    if (image.channels === channels) {
      out.set(image.pixels, base)
      return
    }
    for (let p = 0; p < height * width; p++) out.fill(image.pixels[p]!, base + p * channels, base + (p + 1) * channels)
  })
  return tf.tensor4d(out, [images.length, height, width, channels])
}
