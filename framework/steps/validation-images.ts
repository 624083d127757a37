import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import { join } from "node:path"
import { readDirectoryIfPresent } from "../files/if-present.ts"
import { validationFolder } from "../services/engine.ts"

/** One image of `train.validationPrompts` a train step kept (torch engine). */
export interface ValidationImage {
  readonly step: number
  readonly prompt: string
  /** The PNG, absolute. */
  readonly file: string
}

/** The validation images in a train step's output: `validation/step-<n>/p<prompt index>.png`, by step then prompt; none when it kept none. */
export const validationImagesIn = (
  trainDir: string,
  prompts: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<ValidationImage>, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const folder = join(trainDir, validationFolder)
    const steps = Option.getOrElse(yield* readDirectoryIfPresent(folder), () => [])
    const images: Array<ValidationImage> = []
    for (const stepFolder of steps.filter((s) => /^step-\d+$/.test(s)).sort()) {
      for (const file of (yield* fs.readDirectory(join(folder, stepFolder))).filter((f) => /^p\d+\.png$/.test(f)).sort()) {
        images.push({ step: Number(stepFolder.slice(5)), prompt: prompts[Number(file.slice(1, -4))] ?? file, file: join(folder, stepFolder, file) })
      }
    }
    return images
  })
