import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import sharp from "sharp"
import { TrackerFileError } from "../../framework/services/tracker.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"

/*
 * mlflow.log_image(image, key=…, step=…) in MLflow 3.x (mlflow/tracking/client.py) writes two artifacts:
 *   images/<key with "/" as "~">+step+<step>+timestamp+<ms>+<uuid>.png             (full size)
 *   images/<key with "/" as "~">+step+<step>+timestamp+<ms>+<uuid>+compressed.webp (fits 256 × 256)
 * and sets the run tag mlflow.loggedImages=True. The UI's image view parses these names.
 */

export const COMPRESSED_IMAGE_SIZE = 256

export interface ImageArtifacts {
  readonly png: { readonly artifactPath: string; readonly bytes: Uint8Array }
  readonly thumbnail: { readonly artifactPath: string; readonly bytes: Uint8Array }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export const imageArtifactStem = (key: string, step: number, timestamp: number, id: string): string =>
  `images/${key.replace(/\//g, "~")}+step+${step}+timestamp+${timestamp}+${id}`

/** MLflow's compress_image_size: the longer side becomes 256, the other is scaled and truncated. */
export const thumbnailSize = (width: number, height: number): { width: number; height: number } =>
  width > height
    ? { width: COMPRESSED_IMAGE_SIZE, height: Math.max(1, Math.trunc(height * (COMPRESSED_IMAGE_SIZE / width))) }
    : { width: Math.max(1, Math.trunc(width * (COMPRESSED_IMAGE_SIZE / height))), height: COMPRESSED_IMAGE_SIZE }

/** The two files for one image at one step (named with `id`); a PNG is kept byte for byte, another format is converted. */
export const imageArtifacts = (
  file: string,
  key: string,
  step: number,
  timestamp: number,
  id: string = randomUUID()
): Effect.Effect<ImageArtifacts, TrackerFileError> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFile(file)).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.mapError((error) => new TrackerFileError({ file, reason: `not a readable image: ${fileProblem(error)}` })),
    Effect.flatMap((bytes) => encoded(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), key, step, timestamp, id))
  )

const encoded = (file: string, original: Buffer, key: string, step: number, timestamp: number, id: string): Effect.Effect<ImageArtifacts, TrackerFileError> =>
  Effect.tryPromise({
    try: async () => {
      const png = original.subarray(0, 8).equals(PNG_SIGNATURE) ? original : await sharp(original).png().toBuffer()
      const meta = await sharp(png).metadata()
      if (!(meta.width > 0 && meta.height > 0)) throw new Error(`image size ${meta.width} × ${meta.height}`)
      const size = thumbnailSize(meta.width, meta.height)
      const thumbnail = await sharp(png).resize(size.width, size.height, { fit: "fill" }).webp().toBuffer()
      const stem = imageArtifactStem(key, step, timestamp, id)
      return {
        png: { artifactPath: `${stem}.png`, bytes: png },
        thumbnail: { artifactPath: `${stem}+compressed.webp`, bytes: thumbnail }
      }
    },
    catch: (error) => new TrackerFileError({ file, reason: `not a readable image: ${error instanceof Error ? error.message : String(error)}` })
  })
