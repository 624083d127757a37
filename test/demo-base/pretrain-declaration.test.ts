import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposePipeline, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { Study } from "../../framework/declaration/experiment.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

/**
 * experiments/demo/pretrain.ts, the recipe of the shipped base: it imports only the public API,
 * validates, and plans the stages init-model → VAE training → merge-model → UNet + text encoder
 * training on the stage-1 latents. The same declaration, cut to a few steps and scenes, then runs
 * through `sardine run` and `sardine export` on the real architecture folder.
 */

const declarationFile = join(repoRoot, "experiments/demo/pretrain.ts")

describe("experiments/demo/pretrain.ts", () => {
  it("imports only from sardine and plans init-model → VAE train → merge-model → UNet train", async () => {
    const source = await readFile(declarationFile, "utf8")
    expect([...source.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1])).toEqual(["sardine"])
    const { declaration } = await Effect.runPromise(loadDeclaration(declarationFile).pipe(Effect.provide(NodeContext.layer)))
    expect(declaration.kind).toBe("study")
    const plan = compilePlan(declaration)
    const step = (id: string) => {
      const found = plan.steps.find((s) => s.id === id)
      if (found === undefined) throw new Error(`no step ${id} in ${plan.steps.map((s) => s.id).join(", ")}`)
      return found
    }
    expect(step("vae/base").kind).toBe("init-model")
    expect(step("vae/train").inputs).toContainEqual({ role: "base", step: "vae/base" })
    // The VAE trains, so it reconstructs the images itself: no latent or text cache in stage 1.
    expect(plan.steps.some((s) => s.id === "vae/latents" || s.id === "vae/text")).toBe(false)
    expect(step("vae/merged").kind).toBe("merge-model")
    expect(step("vae/merged").inputs).toEqual([{ role: "model", step: "vae/train" }, { role: "base", step: "vae/base" }])
    // Stage 2 encodes the latents once with the trained VAE; its text encoder trains, so text is not cached.
    expect(step("unet/latents").kind).toBe("encode-latents")
    expect(step("unet/latents").inputs).toContainEqual({ role: "base", step: "vae/merged" })
    expect(step("unet/train").inputs).toEqual(expect.arrayContaining([
      { role: "latents", step: "unet/latents" },
      { role: "base", step: "vae/merged" }
    ]))
    expect(plan.steps.some((s) => s.id === "unet/text")).toBe(false)
    const stages = (declaration as Study).experiments
    expect(stages.map((e) => [e.name, e.base._tag])).toEqual([["vae", "scratch"], ["unet", "trained"]])
    // Every class of the generator is in the pretraining scenes: nothing is excluded.
    for (const e of stages) expect(e.data._tag === "synthetic" && e.data.modality === "optical" && e.data.exclude.length === 0).toBe(true)
    // The VAE sees grain of every strength up to single-look-like, so that it learns to pass pixel-scale
    // texture; the UNet sees the same scenes without it, so that text explains what it must predict.
    expect(stages.map((e) => e.data._tag === "synthetic" && e.data.grain)).toEqual([1, undefined])
  })

  it("runs cut down to a few steps through sardine run, and its stage 2 exports as a loadable pipeline", async () => {
    const { declaration, directory } = await Effect.runPromise(loadDeclaration(declarationFile).pipe(Effect.provide(NodeContext.layer)))
    const encoded = encodeDeclaration(declaration) as {
      experiments: Array<Record<string, any>>
      [key: string]: unknown
    }
    const dir = await mkdtemp(join(tmpdir(), "sardine-demo-pretrain-"))
    try {
      const small = {
        ...encoded,
        experiments: encoded.experiments.map((e) => ({
          ...e,
          ...(e.base._tag === "scratch" ? { base: { ...e.base, architecture: resolve(directory, e.base.architecture) } } : {}),
          data: { ...e.data, n: 4 },
          train: { ...e.train, steps: 2, batchSize: 2, checkpointEvery: 1, lrSchedule: { warmupSteps: 0, decay: "constant" } },
          generate: { ...e.generate, prompts: e.generate.prompts.slice(0, 1), seeds: [0], steps: 2 },
          evaluate: { ...e.evaluate, reference: { ...e.evaluate.reference, n: 2 } }
        }))
      }
      const file = join(dir, "pretrain-small.json")
      await writeFile(file, JSON.stringify(small))
      const cache = join(dir, "cache")
      const run = await sardine(["run", file, "--cache-dir", cache, "--tracking-uri", join(dir, "mlruns"), "--concurrency", "1"])
      expect(run.stderr + run.stdout).toContain("demo-base: 13 ran, 0 cached, 0 failed, 0 blocked")
      expect(run.code).toBe(0)
      const out = join(dir, "base")
      const exported = await sardine(["export", file, "--experiment", "unet", "--format", "diffusers", "--out", out, "--cache-dir", cache])
      expect(exported.code).toBe(0)
      await Effect.runPromise(selectBackend("cpu"))
      const pipeline = await Effect.runPromise(loadPipeline(out))
      expect(pipeline.textEncoders[0]!.tokenizer.maxLength).toBe(32)
      expect(pipeline.vae.plan.config.block_out_channels.length).toBe(3)
      disposePipeline(pipeline)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
