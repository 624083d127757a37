import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime } from "effect"
import { spawn } from "node:child_process"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { makeTorchEngine } from "../../adapters/torch/torch-engine.ts"
import { workerRoot } from "../../adapters/torch/worker-process.ts"
import { Engine, type GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { referencePython } from "../support/reference-python.ts"

/**
 * The torch engine as the tests run it: the reference Python (SARDINE_PYTHON or the repository's .venv, which
 * has the engine's pins), one CPU thread (the machine is shared; a thread count also fixes torch's float order).
 */
process.env.SARDINE_TORCH_THREADS ??= "1"
process.env.SARDINE_TORCH_DEVICE ??= "cpu"

export const torchEngineLayer = Layer.effect(Engine, makeTorchEngine({ python: { python: referencePython(), source: "the tests' reference Python" } })).pipe(
  Layer.provide(Layer.merge(ImageIOLive, NodeContext.layer))
)

export interface PythonResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a Python script with the worker package importable, `input` on its stdin. */
export const runPython = (script: string, args: ReadonlyArray<string>, input = ""): Promise<PythonResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(referencePython(), [script, ...args], {
      env: { ...process.env, PYTHONPATH: workerRoot, HF_HUB_OFFLINE: "1" },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += String(d)))
    child.stderr.on("data", (d) => (stderr += String(d)))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input)
  })

/**
 * One torch engine for the whole test file, as `sardine run` has one for its whole process: the environment
 * is probed (a Python start that imports torch, ≈ 2.5 s of CPU) once, not before every operation; each
 * operation is still a worker process of its own.
 */
const torchEngine = ManagedRuntime.make(torchEngineLayer)

/** Runs an effect on the file's torch engine; rejects with its error. */
export const runTorch = <A, E>(effect: Effect.Effect<A, E, Engine>) => torchEngine.runPromise(effect)

/** Runs an effect on the file's torch engine; its Exit, for tests of failures. */
export const runTorchExit = <A, E>(effect: Effect.Effect<A, E, Engine>) => torchEngine.runPromiseExit(effect)

/** The float32 rasters of a generate step's folder, each with its entry of `samples.json`. */
export const generatedImages = (dir: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const io = yield* ImageIO
      const samples = JSON.parse(yield* Effect.promise(() => readFile(join(dir, "samples.json"), "utf8"))) as Array<GeneratedSample>
      return yield* Effect.forEach(samples, (s) => Effect.map(io.read(join(dir, s.tiff)), (raster) => ({ sample: s, data: raster.data })))
    }).pipe(Effect.provide(ImageIOLive))
  )
