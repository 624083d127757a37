import * as tf from "@tensorflow/tfjs-core"
import type { Raster } from "../../framework/services/image-io.ts"
import { type ClipImageConfig, clipPixelValues } from "../onnx/clip-image-preprocess.ts"

/**
 * Images in [0, 1] as the image tower's NHWC input [B, crop, crop, 3], through the preprocessing both
 * CLIP scorers share (clip-image-preprocess.ts), so training sees exactly what scoring sees.
 */
export const clipPixelTensor = (images: ReadonlyArray<Raster>, config: ClipImageConfig): tf.Tensor4D =>
  tf.tidy(() => {
    const nchw = tf.tensor4d(clipPixelValues(images, config), [images.length, 3, config.cropHeight, config.cropWidth])
    return tf.transpose(nchw, [0, 2, 3, 1])
  })
