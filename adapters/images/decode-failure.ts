import type { DecodeProblem } from "../../framework/services/image-io.ts"

/**
 * Thrown inside the async decoders and turned into an `ImageDecodeError` (with the file name)
 * at the service boundary; the reason is written for the person who owns the file.
 */
export class DecodeFailure extends Error {
  constructor(readonly kind: DecodeProblem, readonly reason: string) {
    super(reason)
  }
}
