import { Effect } from "effect"
import { readdir } from "node:fs/promises"
import { join } from "node:path"
import { validationFolder } from "../services/engine.ts"

/** One image of `train.validationPrompts` a train step kept (torch engine). */
export interface ValidationImage {
  readonly step: number
  readonly prompt: string
  /** The PNG, absolute. */
  readonly file: string
}

/** The validation images in a train step's output: `validation/step-<n>/p<prompt index>.png`, by step then prompt. */
export const validationImagesIn = (trainDir: string, prompts: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const folder = join(trainDir, validationFolder)
    const steps = await readdir(folder).catch(() => [] as Array<string>)
    const images: Array<ValidationImage> = []
    for (const stepFolder of steps.filter((s) => /^step-\d+$/.test(s)).sort()) {
      for (const file of (await readdir(join(folder, stepFolder))).filter((f) => /^p\d+\.png$/.test(f)).sort()) {
        images.push({ step: Number(stepFolder.slice(5)), prompt: prompts[Number(file.slice(1, -4))] ?? file, file: join(folder, stepFolder, file) })
      }
    }
    return images
  })
