import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { basename, join } from "node:path"
import { Weights, WeightsReadError, type ComponentListing, type TensorListing, type WeightsListing } from "../../framework/services/weights.ts"
import { configParameters } from "../tfjs/config-parameters.ts"
import type { ModelConfigError } from "../tfjs/model-config.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
import { componentWeightFiles } from "./component-files.ts"
import { SafetensorsError } from "./safetensors-error.ts"
import { elementCount } from "./safetensors-header.ts"
import { readSafetensorsHeader } from "./safetensors-reader.ts"

const readError = (error: SafetensorsError | WeightsReadError | ModelConfigError): WeightsReadError =>
  error instanceof WeightsReadError
    ? error
    : error instanceof SafetensorsError
    ? new WeightsReadError({ file: error.file, reason: error.tensor === undefined ? error.reason : `tensor "${error.tensor}": ${error.reason}` })
    : new WeightsReadError({ file: error.file, reason: error.reason })

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

const componentListing = (
  name: string,
  source: ComponentListing["source"],
  files: ReadonlyArray<string>,
  tensors: Array<TensorListing>,
  className?: string
) => {
  const sorted = tensors.sort(byName)
  return {
    name,
    ...(className === undefined ? {} : { className }),
    source,
    files,
    tensors: sorted,
    parameters: sorted.reduce((sum, t) => sum + t.parameters, 0)
  }
}

const listFiles = (name: string, files: ReadonlyArray<string>, className?: string): Effect.Effect<ComponentListing, SafetensorsError> =>
  Effect.gen(function*() {
    const headers = yield* Effect.forEach(files, readSafetensorsHeader)
    const tensors = headers.flatMap((h) => h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, parameters: elementCount(t.shape) })))
    return componentListing(name, "weights", files, tensors, className)
  })

/** A model folder without weights, from its config.json: the tensors `from_config` would create (F32, as sardine writes them). */
const listConfig = (name: string, folder: string, className?: string): Effect.Effect<ComponentListing | undefined, ModelConfigError> =>
  Effect.map(configParameters(folder, className), (found) =>
    found === undefined ? undefined : componentListing(
      name,
      "config",
      [found.file],
      found.specs.map((spec) => ({ name: spec.name, dtype: "F32", shape: spec.shape, parameters: elementCount(spec.shape) })),
      found.className
    ))

const noWeights = (e: SafetensorsError) => e.reason.startsWith("no safetensors weights")

/** A model folder: its weights when it has some, else its config; a folder with neither is an error. */
const listComponent = (name: string, folder: string, className?: string): Effect.Effect<ComponentListing, SafetensorsError | ModelConfigError> =>
  componentWeightFiles(folder).pipe(
    Effect.flatMap((files) => listFiles(name, files, className)),
    Effect.catchIf(
      noWeights,
      (e) => Effect.flatMap(listConfig(name, folder, className), (listed) => (listed === undefined ? Effect.fail(e) : Effect.succeed(listed)))
    )
  )

/**
 * Components of a pipeline folder: entries of model_index.json that are `[library, class]` and hold weights
 * or, without weights, a config sardine can count (an architecture folder).
 */
const pipelineComponents = (
  fs: FileSystem.FileSystem,
  folder: string
): Effect.Effect<Array<ComponentListing>, SafetensorsError | WeightsReadError | ModelConfigError> =>
  Effect.gen(function*() {
    const indexFile = join(folder, "model_index.json")
    const notJson = (reason: string) => new WeightsReadError({ file: indexFile, reason: `not readable JSON (${reason})` })
    const text = yield* fs.readFileString(indexFile).pipe(Effect.mapError((error) => notJson(fileProblem(error))))
    const index = yield* Effect.try({ try: () => JSON.parse(text) as Record<string, unknown>, catch: (error) => notJson((error as Error).message) })
    const components: Array<ComponentListing> = []
    for (const [name, entry] of Object.entries(index).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (name.startsWith("_") || !Array.isArray(entry) || typeof entry[1] !== "string") continue
      const entryFolder = join(folder, name)
      const info = yield* fs.stat(entryFolder).pipe(
        Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
        Effect.mapError((error) => new WeightsReadError({ file: entryFolder, reason: fileProblem(error) }))
      )
      if (info?.type !== "Directory") continue
      const listed = yield* listComponent(name, join(folder, name), entry[1]).pipe(
        Effect.catchIf((e) => e instanceof SafetensorsError && noWeights(e), () => Effect.succeed(undefined))
      )
      // A component with neither weights nor a config sardine can count (e.g. the scheduler) lists nothing.
      if (listed !== undefined) components.push(listed)
    }
    return components
  })

const list = (fs: FileSystem.FileSystem) => (path: string): Effect.Effect<WeightsListing, WeightsReadError> =>
  Effect.gen(function*() {
    const unreadable = (file: string) => (error: PlatformError) => new WeightsReadError({ file, reason: fileProblem(error) })
    const info = yield* fs.stat(path).pipe(Effect.mapError(unreadable(path)))
    const isFolder = info.type === "Directory"
    const indexFile = join(path, "model_index.json")
    const hasIndex = isFolder && (yield* fs.exists(indexFile).pipe(Effect.mapError(unreadable(indexFile))))
    const components = !isFolder
      ? [yield* listFiles(basename(path), [path])]
      : hasIndex
      ? yield* pipelineComponents(fs, path)
      : [yield* listComponent(basename(path), path)]
    return {
      path,
      kind: !isFolder ? "file" as const : hasIndex ? "pipeline" as const : "component" as const,
      components,
      parameters: components.reduce((sum, c) => sum + c.parameters, 0)
    }
  }).pipe(Effect.mapError(readError))

/** The Weights service reading safetensors headers (tensor data is never read), or model configs where there are no weights. */
export const WeightsLive = Layer.effect(Weights, Effect.map(FileSystem.FileSystem, (fs) => ({ list: list(fs) }))).pipe(Layer.provide(NodeFileSystem.layer))
