import type * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { DataFolderError } from "../training/index-files.ts"

/**
 * The values of an encoder's output tensor, read from the backend (a rejected read, e.g. a failed
 * kernel, is an error naming the data folder being encoded, not a defect).
 */
export const encodedValues = (tensor: tf.Tensor, dataFolder: string): Effect.Effect<Float32Array, DataFolderError> =>
  Effect.tryPromise({
    try: () => tensor.data() as Promise<Float32Array>,
    catch: (e) => new DataFolderError({ file: dataFolder, reason: `the encoder's output cannot be read: ${(e as Error).message}`, cause: e })
  })
