import { Effect, Layer } from "effect"
import { readFile, stat } from "node:fs/promises"
import { basename, join } from "node:path"
import { Weights, WeightsReadError, type ComponentListing, type WeightsListing } from "../../framework/services/weights.ts"
import { componentWeightFiles } from "./component-files.ts"
import { SafetensorsError } from "./safetensors-error.ts"
import { elementCount } from "./safetensors-header.ts"
import { readSafetensorsHeader } from "./safetensors-reader.ts"

const readError = (error: SafetensorsError | WeightsReadError): WeightsReadError =>
  error instanceof WeightsReadError
    ? error
    : new WeightsReadError({ file: error.file, reason: error.tensor === undefined ? error.reason : `tensor "${error.tensor}": ${error.reason}` })

const listFiles = (name: string, files: ReadonlyArray<string>, className?: string): Effect.Effect<ComponentListing, SafetensorsError> =>
  Effect.gen(function*() {
    const headers = yield* Effect.forEach(files, readSafetensorsHeader)
    const tensors = headers.flatMap((h) =>
      h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, parameters: elementCount(t.shape) }))
    ).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return {
      name,
      ...(className === undefined ? {} : { className }),
      files,
      tensors,
      parameters: tensors.reduce((sum, t) => sum + t.parameters, 0)
    }
  })

/** Components of a pipeline folder: entries of model_index.json that are `[library, class]` and hold weights. */
const pipelineComponents = (folder: string): Effect.Effect<Array<ComponentListing>, SafetensorsError | WeightsReadError> =>
  Effect.gen(function*() {
    const indexFile = join(folder, "model_index.json")
    const index = yield* Effect.tryPromise({
      try: async () => JSON.parse(await readFile(indexFile, "utf8")) as Record<string, unknown>,
      catch: (error) => new WeightsReadError({ file: indexFile, reason: `not readable JSON (${(error as Error).message})` })
    })
    const components: Array<ComponentListing> = []
    for (const [name, entry] of Object.entries(index).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (name.startsWith("_") || !Array.isArray(entry) || typeof entry[1] !== "string") continue
      const isFolder = yield* Effect.promise(() => stat(join(folder, name)).then((s) => s.isDirectory(), () => false))
      if (!isFolder) continue
      const files = yield* componentWeightFiles(join(folder, name)).pipe(
        Effect.catchIf((e) => e.reason.startsWith("no safetensors weights"), () => Effect.succeed([] as Array<string>))
      )
      if (files.length > 0) components.push(yield* listFiles(name, files, entry[1]))
    }
    return components
  })

const list = (path: string): Effect.Effect<WeightsListing, WeightsReadError> =>
  Effect.gen(function*() {
    const info = yield* Effect.tryPromise({
      try: () => stat(path),
      catch: (error) => new WeightsReadError({ file: path, reason: (error as Error).message })
    })
    const hasIndex = info.isDirectory() &&
      (yield* Effect.promise(() => stat(join(path, "model_index.json")).then(() => true, () => false)))
    const components = !info.isDirectory()
      ? [yield* listFiles(basename(path), [path])]
      : hasIndex
      ? yield* pipelineComponents(path)
      : [yield* listFiles(basename(path), yield* componentWeightFiles(path))]
    return {
      path,
      kind: !info.isDirectory() ? "file" as const : hasIndex ? "pipeline" as const : "component" as const,
      components,
      parameters: components.reduce((sum, c) => sum + c.parameters, 0)
    }
  }).pipe(Effect.mapError(readError))

/** The Weights service reading safetensors headers (tensor data is never read). */
export const WeightsLive = Layer.succeed(Weights, { list })
