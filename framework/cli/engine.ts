import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { resolve } from "node:path"
import { EngineEnvironments, type TorchEnvironment } from "../services/engine.ts"
import { OnnxEngine, type OnnxRuntimeInfo } from "../services/onnx-pipeline.ts"

/**
 * `sardine engine`: the engines' environments. The tfjs engine is embedded (nothing to set up); the torch
 * engine runs a Python worker on PyTorch, diffusers, PEFT and accelerate, in a Python environment with the
 * versions of adapters/torch/requirements.txt.
 */

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`

const describe = (env: TorchEnvironment): string => {
  const rows = Object.entries(env.pins).map(([name, pin]) => {
    const found = env.versions[name] ?? null
    const ok = found !== null && found.split("+")[0] === pin
    return `  ${name.padEnd(13)} ${(found ?? "missing").padEnd(16)} ${ok ? "ok" : `tested: ${pin}`}`
  })
  const devices = env.devices.length === 0
    ? ["  none: the worker computes on the CPU"]
    : env.devices.map((d) => `  ${d.name}  ${gib(d.memoryBytes)}  bf16: ${d.bf16 === null ? "?" : d.bf16 ? "yes" : "no"}`)
  return [
    `torch engine: ${env.python} (${env.source})`,
    `  python        ${env.pythonVersion}`,
    ...rows,
    `  bitsandbytes  ${env.bitsandbytes ?? "not installed (8-bit AdamW unavailable)"}`,
    `  torch CUDA    ${env.cuda ?? "none (a CPU build)"}`,
    `devices (the worker computes on ${env.device}, ${env.threads} CPU threads):`,
    ...devices,
    "tfjs engine: embedded (npx sardine run … --engine tfjs)"
  ].join("\n")
}

const json = Options.boolean("json").pipe(Options.withDescription("Print the torch environment as JSON"))

/** The ONNX engine's line: onnxruntime-node and the execution providers its sessions use. */
const describeOnnx = (info: OnnxRuntimeInfo): string =>
  `onnx engine: onnxruntime-node ${info.version}, execution providers ${info.providers.join(", ")}` +
  (info.unavailable.length === 0 ? "" : ` (known but not installed: ${info.unavailable.join(", ")})`)

const check = Command.make("check", { json }, ({ json }) =>
  Effect.gen(function*() {
    const onnx = yield* (yield* OnnxEngine).runtime
    // The ONNX engine needs no Python: its line is printed even when the torch engine's check fails.
    const env = yield* (yield* EngineEnvironments).torch.pipe(Effect.tapError(() => json ? Effect.void : Console.log(describeOnnx(onnx))))
    yield* Console.log(json ? JSON.stringify({ ...env, onnx }, null, 2) : `${describe(env)}\n${describeOnnx(onnx)}`)
  })).pipe(
    Command.withDescription(
      "Start the torch engine's worker and print its Python, torch, diffusers, transformers, PEFT, accelerate versions and the CUDA devices " +
        "(memory, bf16), then onnxruntime-node's version and execution providers (CUDA where its libraries are installed, else the CPU); " +
        "exit 1, naming each pin, when a pinned package is missing or of another version."
    )
  )

const engineName = Args.choice([["torch", "torch"]], { name: "engine" }).pipe(Args.withDescription("The engine to set up (only torch has an environment)"))
const venv = Options.directory("venv").pipe(
  Options.optional,
  Options.withDescription(
    "Where to make the venv (default: .venv/ in sardine's folder, found without SARDINE_PYTHON; elsewhere, set SARDINE_PYTHON=<venv>/bin/python)"
  )
)

const setup = Command.make("setup", { engine: engineName, venv }, ({ venv }) =>
  Effect.gen(function*() {
    const folder = Option.getOrUndefined(Option.map(venv, (v) => resolve(v)))
    const env = yield* (yield* EngineEnvironments).setupTorch(folder)
    yield* Console.log(describe(env))
    // A venv elsewhere than the default is found through SARDINE_PYTHON only.
    if (folder !== undefined && process.env.SARDINE_PYTHON !== env.python) yield* Console.log(`set SARDINE_PYTHON=${env.python} for sardine to use it`)
  })).pipe(
    Command.withDescription(
      "Create a venv with the torch engine's pinned packages (adapters/torch/requirements.txt) and check it; pip's progress is shown. " +
        "PyPI's torch wheel carries its CUDA libraries (several GB): this takes minutes."
    )
  )

export const engineCommand = Command.make("engine").pipe(
  Command.withDescription(
    "The engines that compute the steps: tfjs (embedded: the demo, CI, no Python) and torch (a Python worker on PyTorch, diffusers, PEFT, " +
      "accelerate: SDXL, GPUs, mixed precision). Choose with `sardine run --engine tfjs|torch|auto` or a declaration's `engine`. " +
      "The torch engine uses SARDINE_PYTHON, else the venv `sardine engine setup torch` makes; SARDINE_TORCH_THREADS sets its CPU threads, " +
      "SARDINE_TORCH_DEVICE=cpu keeps it off the GPU, SARDINE_TORCH_VERBOSE=1 shows its own output."
  ),
  Command.withSubcommands([check, setup])
)
