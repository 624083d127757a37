import { Console, Effect, Layer } from "effect"
import { spawn } from "node:child_process"
// Synchronous checks of a venv's files while the environment is chosen, before any Effect needs them: a
// FileSystem there would become a requirement of every layer built on EngineEnvironments.
import { existsSync, readFileSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { EngineEnvironments, EngineError, type TorchEnvironment } from "../../framework/services/engine.ts"
import { environmentHint, runWorker } from "./worker-process.ts"
import type { Hello } from "./worker-protocol.ts"

/**
 * The torch engine's Python: `SARDINE_PYTHON` (a cluster's own PyTorch module, an existing venv), else the
 * venv `sardine engine setup torch` makes by default, `.venv/` at the root of sardine's checkout — the one
 * venv that also serves the tests and the golden tools (tools/requirements.txt includes the engine's pins),
 * found from any working directory. Its packages must have the versions of adapters/torch/requirements.txt.
 */

export const requirementsFile = fileURLToPath(new URL("./requirements.txt", import.meta.url))
export const defaultVenv = fileURLToPath(new URL("../../.venv", import.meta.url))

export interface PythonLocation {
  readonly python: string
  readonly source: string
}

/** Where the torch engine's Python is, when one is configured. */
export const configuredPython = (): PythonLocation | undefined => {
  const declared = process.env.SARDINE_PYTHON
  if (declared !== undefined && declared !== "") return { python: declared, source: "SARDINE_PYTHON" }
  const python = `${defaultVenv}/bin/python`
  return existsSync(python) ? { python, source: `the default venv ${defaultVenv}` } : undefined
}

export const noPython = (operation: string) =>
  new EngineError({
    operation,
    reason: `no Python is configured for the torch engine (SARDINE_PYTHON is unset and ${defaultVenv} does not exist); ${environmentHint}`
  })

/** The pinned versions, by package name. */
export const pins = (): Record<string, string> =>
  Object.fromEntries(
    readFileSync(requirementsFile, "utf8").split("\n").flatMap((line) => {
      const match = /^\s*([A-Za-z0-9_.-]+)==([^\s#;]+)/.exec(line)
      // Both groups are mandatory: a match has them.
      return match === null ? [] : [[match[1]!.toLowerCase(), match[2]!]]
    })
  )

/** A local version label (`2.15.0+cu132`) is the same release as its pin (`2.15.0`). */
const release = (version: string) => version.split("+")[0]

/** The pinned packages that are missing or of another version, each as a phrase. */
export const versionProblems = (installed: Readonly<Record<string, string | null>>, pinned: Readonly<Record<string, string>>): Array<string> =>
  Object.entries(pinned).flatMap(([name, version]) => {
    const found = installed[name] ?? null
    if (found === null) return [`${name} is not installed (tested: ${name}==${version})`]
    return release(found) === version ? [] : [`${name} ${found} is installed (tested: ${name}==${version})`]
  })

export const allowsUntested = () => process.env.SARDINE_TORCH_UNTESTED !== undefined && process.env.SARDINE_TORCH_UNTESTED !== ""

const environmentOf = (location: PythonLocation, hello: Hello): TorchEnvironment => ({
  python: location.python,
  source: location.source,
  pythonVersion: hello.python,
  versions: hello.versions,
  pins: pins(),
  bitsandbytes: hello.bitsandbytes,
  cuda: hello.cuda,
  devices: hello.devices,
  device: hello.device,
  threads: hello.threads
})

/**
 * Starts the worker once to describe its environment, and refuses it (one message naming every package
 * and its pin) when a pinned package is missing or of another version — unless SARDINE_TORCH_UNTESTED is set.
 */
export const probeEnvironment = (location: PythonLocation): Effect.Effect<TorchEnvironment, EngineError> =>
  Effect.gen(function*() {
    const { hello } = yield* runWorker({ ...location, operation: "hello", request: {}, onMessage: () => Effect.void }).pipe(
      Effect.mapError((e) => new EngineError({ ...e, operation: "torch engine" }))
    )
    const [major, minor] = hello.python.split(".").map(Number)
    if (major === undefined || minor === undefined || major < 3 || (major === 3 && minor < 11)) {
      return yield* new EngineError({
        operation: "torch engine",
        reason: `${location.python} (${location.source}) is Python ${hello.python}; the torch engine needs Python 3.11 or newer`
      })
    }
    const environment = environmentOf(location, hello)
    const problems = versionProblems(hello.versions, environment.pins)
    if (problems.length > 0 && allowsUntested()) yield* Console.error(`warning: ${problems.join("; ")}; running anyway (SARDINE_TORCH_UNTESTED)`)
    if (problems.length > 0 && !allowsUntested()) {
      return yield* new EngineError({
        operation: "torch engine",
        reason: `the torch engine's Python ${location.python} (${location.source}) is not the tested environment: ${problems.join("; ")}. ` +
          `Run \`sardine engine setup torch\` (or install adapters/torch/requirements.txt there); SARDINE_TORCH_UNTESTED=1 runs it anyway`
      })
    }
    return environment
  })

const run = (command: string, args: ReadonlyArray<string>, operation: string) =>
  Effect.async<void, EngineError>((resume) => {
    // pip's progress goes to our stderr, so that stdout stays the command's own.
    const child = spawn(command, args, { stdio: ["ignore", 2, 2] })
    child.on("error", (e) => resume(Effect.fail(new EngineError({ operation, reason: `cannot run ${command}: ${e.message}`, cause: e }))))
    child.on("exit", (code, signal) =>
      resume(
        code === 0
          ? Effect.void
          : Effect.fail(
            new EngineError({ operation, reason: `${command} ${args.join(" ")} ${signal === null ? `exited with status ${code}` : `was killed by ${signal}`}` })
          )
      ))
    return Effect.sync(() => child.kill("SIGTERM"))
  })

/** The version of a Python on PATH, when it runs. */
const pythonVersion = (command: string) =>
  Effect.async<readonly [number, number] | undefined>((resume) => {
    const child = spawn(command, ["-c", "import sys; print(sys.version_info[0], sys.version_info[1])"], { stdio: ["ignore", "pipe", "ignore"] })
    let out = ""
    child.stdout.on("data", (d) => (out += String(d)))
    child.on("error", () => resume(Effect.succeed(undefined)))
    child.on("exit", (code) => {
      const [major, minor] = out.trim().split(" ").map(Number)
      const parsed = major !== undefined && minor !== undefined && Number.isInteger(major) && Number.isInteger(minor)
      resume(Effect.succeed(code === 0 && parsed ? [major, minor] as const : undefined))
    })
  })

/** The first Python ≥ 3.11 on PATH to make the venv with. */
const basePython = Effect.gen(function*() {
  for (const command of ["python3.13", "python3.12", "python3.11", "python3"]) {
    const version = yield* pythonVersion(command)
    if (version !== undefined && (version[0] > 3 || (version[0] === 3 && version[1] >= 11))) return command
  }
  return yield* new EngineError({
    operation: "setup",
    reason: "no Python 3.11 or newer on PATH (python3.13, python3.12, python3.11, python3) to make the venv with"
  })
})

/**
 * `sardine engine setup torch`: a venv at `venv` (default: defaultVenv) with the pinned packages. PyPI's
 * torch wheel carries its CUDA libraries (several GB) and runs on CPU too; the install takes minutes.
 */
export const setupVenv = (venv: string | undefined): Effect.Effect<string, EngineError> =>
  Effect.gen(function*() {
    const folder = venv ?? defaultVenv
    const python = `${folder}/bin/python`
    if (!existsSync(python)) {
      const base = yield* basePython
      process.stderr.write(`creating the venv ${folder} with ${base}\n`)
      yield* run(base, ["-m", "venv", folder], "setup")
    }
    process.stderr.write(`installing ${requirementsFile} into ${folder} (torch's wheel is several GB: this takes minutes)\n`)
    yield* run(python, ["-m", "pip", "install", "--upgrade", "pip"], "setup")
    yield* run(python, ["-m", "pip", "install", "-r", requirementsFile], "setup")
    return python
  })

/** The engines' environments as production sees them (only the torch engine has one to describe). */
export const EngineEnvironmentsLive = Layer.succeed(EngineEnvironments, {
  torchConfigured: Effect.sync(() => configuredPython() !== undefined),
  torch: Effect.suspend(() => {
    const location = configuredPython()
    return location === undefined ? Effect.fail(noPython("torch engine")) : probeEnvironment(location)
  }),
  setupTorch: (venv) => Effect.flatMap(setupVenv(venv), (python) => probeEnvironment({ python, source: `the venv ${dirname(dirname(python))}` }))
})
