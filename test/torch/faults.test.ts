import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, Schema } from "effect"
import { cp, readdir, readFile, truncate, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { BaseModel, diffusers } from "../../framework/declaration/base-model.ts"
import { encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { Study } from "../../framework/declaration/experiment.ts"
import { Generation } from "../../framework/declaration/generation.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { Engine, EngineError } from "../../framework/services/engine.ts"
import { resolvedAlignment } from "../demo/cut-down-demo.ts"
import { repoRoot, sardine, start } from "../support/run-process.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { components, readWeights, temporaryFolder, training } from "../training/training-run.ts"
import { runPython, runTorch, runTorchExit } from "./torch-worker.ts"

/**
 * The torch engine's faults, each produced for real: a worker killed with SIGKILL mid-training (the rerun
 * resumes to the uninterrupted run's weights, bit for bit), Ctrl-C during `sardine run` (exit 130, the worker
 * checkpoints and exits, the rerun resumes), a missing, torch-less or wrong-version Python (one clear line),
 * a Python exception (its type, message and frames), a held-out dataset of another shape (named). Cost: ≈ 3–4 min on a quiet 2-core machine, most of it
 * Python starts; one `pip install` of an older safetensors wheel (≈ 0.5 MB) from PyPI.
 */

const base = resolve(repoRoot, "experiments/demo/base")
const resolvedBase = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(base, { family: "tiny" })), path: base }

/** The torch workers `parent` started (children whose command line runs sardine_torch). */
const workerPids = async (parent = process.pid): Promise<Array<number>> => {
  const pids: Array<number> = []
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const [stat, cmdline] = await Promise.all([readFile(`/proc/${entry}/stat`, "utf8"), readFile(`/proc/${entry}/cmdline`, "utf8")]).catch(() => ["", ""])
    if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parent && cmdline.includes("sardine_torch")) pids.push(Number(entry))
  }
  return pids
}

describe("the torch engine's faults", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  beforeAll(async () => {
    folder = await temporaryFolder("torch-faults")
  })
  afterAll(() => folder.remove())

  it("a held-out validation dataset whose prepared samples differ in shape from the training data's is refused, naming its index", async () => {
    const dataDir = join(folder.dir, "shape-data")
    const heldOut = join(folder.dir, "shape-held-out")
    await Effect.runPromise(prepareSyntheticData(dataDir, { n: 4, size: 32, seed: 4 }))
    await Effect.runPromise(prepareSyntheticData(heldOut, { n: 2, size: 16, seed: 5 }))
    const exit = await runTorchExit(
      Effect.flatMap(Engine, (engine) =>
        engine.train({
          base: resolvedBase,
          adaptation: resolveAdaptation(components({ unet: { _tag: "full", lr: 1e-3 } }), "tiny"),
          train: training({ steps: 2, seed: 9, validationLoss: { data: { _tag: "synthetic", n: 2, size: 16, seed: 5 } } }),
          dataDir,
          validation: { dataDir: heldOut },
          workDir: join(folder.dir, "shape-work"),
          progress: () => Effect.void,
          metrics: () => Effect.void,
          log: () => Effect.void
        }))
    )
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error).toBeInstanceOf(EngineError)
    expect((error as EngineError).reason).toContain(
      `${heldOut}/index.json: train.validationLoss.data's samples are 16×16×1, the training data's 32×32×1`
    )
  }, 600_000)

  it("a worker killed (SIGKILL) mid-training is an error; the rerun resumes to the uninterrupted run's weights, bit for bit", async () => {
    const dataDir = join(folder.dir, "data")
    await Effect.runPromise(prepareSyntheticData(dataDir, { n: 8, size: 32, seed: 4 }))
    const logs: Array<string> = []
    const train = (workDir: string, onStep: (done: number) => Effect.Effect<void> = () => Effect.void) =>
      Effect.flatMap(Engine, (engine) =>
        engine.train({
          base: resolvedBase,
          adaptation: resolveAdaptation(components({ unet: { _tag: "full", lr: 1e-3 }, textEncoders: { _tag: "lora", rank: 2, lr: 1e-3 } }), "tiny"),
          train: training({ steps: 8, batchSize: 2, seed: 9, checkpointEvery: 2 }),
          dataDir,
          workDir,
          progress: (done) => onStep(done),
          metrics: () => Effect.void,
          log: (message) => Effect.sync(() => void logs.push(message))
        }))
    await runTorch(train(join(folder.dir, "whole")))
    const killed = join(folder.dir, "killed")
    const killAtStep5 = (done: number) =>
      done === 5
        ? Effect.promise(async () => {
          for (const pid of await workerPids()) process.kill(pid, "SIGKILL")
        })
        : Effect.void
    const exit = await runTorchExit(train(killed, killAtStep5))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(/EngineError.*the torch worker .* was killed by SIGKILL before finishing/s)
    await runTorch(train(killed))
    // The kill lands at step 5 or, on a loaded machine, a step later (the worker trains on while its pid is looked
    // up): the rerun resumes from the last checkpoint written before it (every second step), whichever that was.
    expect(logs.filter((l) => l.startsWith("resuming"))).toEqual([expect.stringMatching(/^resuming from the checkpoint at step [246] of 8$/)])
    const [a, b] = [await readWeights(join(folder.dir, "whole", "model.safetensors")), await readWeights(join(killed, "model.safetensors"))]
    expect([...b.keys()]).toEqual([...a.keys()])
    for (const [name, t] of a) expect(Buffer.from(b.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true)
    expect(await workerPids()).toEqual([])
  }, 900_000)

  it("a Python exception reaches the caller as an EngineError with its type, message and frames", async () => {
    const broken = join(folder.dir, "broken-base")
    await cp(base, broken, { recursive: true })
    await truncate(join(broken, "unet", "diffusion_pytorch_model.safetensors"), 1000)
    const exit = await runTorchExit(
      Effect.flatMap(Engine, (engine) =>
        engine.generate({
          base: { ...resolvedBase, path: broken },
          adaptation: resolveAdaptation(components({ unet: { _tag: "frozen" } }), "tiny"),
          generate: Schema.decodeUnknownSync(Generation)({ prompts: ["SAR image of a town"], steps: 2 }),
          resolution: 32,
          outDir: join(folder.dir, "never"),
          progress: () => Effect.void
        }))
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error).toBeInstanceOf(EngineError)
    const engineError = error as EngineError
    expect(engineError.operation).toBe("generate")
    expect(engineError.exception).toMatch(/SafetensorError|HeaderTooLarge|OSError|EnvironmentError/)
    expect(engineError.reason.length).toBeGreaterThan(0)
    expect(engineError.frames?.some((f) => f.includes("sardine_torch"))).toBe(true)
    expect(engineError.message).toContain(`generate: ${engineError.exception}: `)
  }, 300_000)

  it("a missing, torch-less or wrong-version Python is one clear line; SARDINE_TORCH_UNTESTED lets a wrong version run", async () => {
    const demo = join(repoRoot, "experiments/demo/study.ts")
    const validate = (python: string, env: Record<string, string> = {}) =>
      sardine(["validate", demo, "--engine", "torch"], { env: { SARDINE_PYTHON: python, ...env } })
    const missing = await validate("/nonexistent/bin/python")
    expect(missing.code).toBe(1)
    expect(missing.stderr.trim().split("\n")).toEqual([
      "error: torch engine: there is no Python at /nonexistent/bin/python (SARDINE_PYTHON); the torch engine needs the packages of " +
      "adapters/torch/requirements.txt: run `sardine engine setup torch`, or set SARDINE_PYTHON to a Python that has them"
    ])

    const bare = join(folder.dir, "bare-venv")
    expect((await runPython("-m", ["venv", "--without-pip", bare])).code).toBe(0)
    const withoutTorch = await validate(join(bare, "bin", "python"))
    expect(withoutTorch.code).toBe(1)
    expect(withoutTorch.stderr.trim().split("\n")).toHaveLength(1)
    expect(withoutTorch.stderr).toMatch(/cannot run the torch worker: ModuleNotFoundError: No module named 'torch'; .*sardine engine setup torch/)

    // The reference packages, with an older safetensors in front of them: a real wrong-version environment.
    const older = join(folder.dir, "older-venv")
    expect((await runPython("-m", ["venv", "--without-pip", older])).code).toBe(0)
    const install = await runPython("-m", ["pip", "--python", join(older, "bin", "python"), "install", "-q", "--no-deps", "safetensors==0.7.0"])
    expect(install.code, install.stderr).toBe(0)
    const sitePackages = (await runPython("-c", ["import site; print(site.getsitepackages()[0])"])).stdout.trim()
    const olderSite = (await readdir(join(older, "lib"))).map((p) => join(older, "lib", p, "site-packages"))[0]!
    await writeFile(join(olderSite, "reference.pth"), `${sitePackages}\n`)
    const wrong = await validate(join(older, "bin", "python"))
    expect(wrong.code).toBe(1)
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1)
    expect(wrong.stderr).toContain("is not the tested environment: safetensors 0.7.0 is installed (tested: safetensors==0.8.0)")
    const check = await sardine(["engine", "check"], { env: { SARDINE_PYTHON: join(older, "bin", "python") } })
    expect(check.code).toBe(1)
    expect(check.stderr).toContain("safetensors 0.7.0 is installed (tested: safetensors==0.8.0)")
    const untested = await validate(join(older, "bin", "python"), { SARDINE_TORCH_UNTESTED: "1" })
    expect(untested.code).toBe(0)
    expect(untested.stderr).toContain("warning: safetensors 0.7.0 is installed (tested: safetensors==0.8.0); running anyway (SARDINE_TORCH_UNTESTED)")
    expect(untested.stdout).toMatch(/valid study "demo" \(\d+ experiments\) on the torch engine/)
  }, 600_000)

  it("Ctrl-C during a torch training: sardine run exits 130, the worker checkpoints and exits; the rerun resumes and finishes", async () => {
    const { declaration, directory } = await Effect.runPromise(
      loadDeclaration(join(repoRoot, "experiments/demo/study.ts")).pipe(Effect.provide(NodeContext.layer))
    )
    const encoded = encodeDeclaration(declaration) as { experiments: Array<Record<string, any>> }
    const e = encoded.experiments.find((x) => x.name === "full-unet")!
    const one = {
      ...e,
      name: "interrupted",
      base: { ...e.base, path: resolve(directory, e.base.path) },
      data: { ...e.data, n: 16 },
      train: { ...e.train, steps: 60, batchSize: 2, checkpointEvery: 1000 },
      generate: { ...e.generate, prompts: [e.generate.prompts[0]], seeds: [0], steps: 2 },
      evaluate: {
        ...e.evaluate,
        reference: { ...e.evaluate.reference, n: 8 },
        alignment: resolvedAlignment(directory, e.evaluate.alignment)
      }
    }
    expect((declaration as Study).kind).toBe("study")
    const file = join(folder.dir, "interrupted.json")
    await writeFile(file, JSON.stringify(one))
    const args = ["run", file, "--engine", "torch", "--cache-dir", join(folder.dir, "cache"), "--tracking-uri", join(folder.dir, "mlruns")]
    const running = start(join(repoRoot, "bin/sardine.ts"), args)
    let workers: Array<number> = []
    await new Promise<void>((done, fail) => {
      const timer = setInterval(async () => {
        if (/train\s+interrupted\/train\s+[1-9]\d*\/60 steps/.test(running.output())) {
          clearInterval(timer)
          workers = await workerPids(running.child.pid)
          running.child.kill("SIGINT")
          done()
        }
        if (running.child.exitCode !== null) {
          clearInterval(timer)
          fail(new Error(`sardine run ended before training: ${running.output()}`))
        }
      }, 200)
    })
    const interrupted = await running.done
    expect(interrupted.code, interrupted.stderr).toBe(130)
    expect(workers).toHaveLength(1)
    const alive = await readFile(`/proc/${workers[0]}/stat`, "utf8").then((stat) => !/^\d+ \(.*\) Z/.test(stat), () => false)
    expect(alive, "the worker is gone").toBe(false)
    const rerun = await sardine(args)
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(rerun.stderr + rerun.stdout).toMatch(/resuming from the checkpoint at step [1-9]\d* of 60/)
  }, 1_200_000)
})
