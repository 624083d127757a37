import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { Study } from "../../framework/declaration/experiment.ts"
import { promptsOf } from "../../framework/declaration/generation.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import type { EvaluationResult } from "../../framework/steps/evaluation-result.ts"
import { localRuns } from "../support/local-mlruns.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

/**
 * experiments/demo/study.ts, the README's main job: the seed study's seven strategies on the shipped
 * tiny base, fine-tuned on synthetic SAR without ships. Cut down (fewer scenes, steps and samples)
 * it runs through `sardine run` here, and the ordering the demo shows must already hold: every
 * strategy that fine-tunes the UNet or the VAE generates amplitudes closer to the real (synthetic)
 * SAR reference than the frozen baseline, and follows its prompts better by the SAR CLIP's alignment
 * gap (own prompt minus the others: SAR-likeness alone does not raise it).
 */

const declarationFile = join(repoRoot, "experiments/demo/study.ts")
const strategies = ["baseline", "full-unet", "lora-unet", "lora-text-encoders", "full-vae", "hybrid", "hybrid-no-token"]
/** The strategies whose trained part shapes the pixels (UNet or VAE); text-encoder LoRA alone is reported, not ranked. */
const pixelStrategies = ["full-unet", "lora-unet", "full-vae", "hybrid", "hybrid-no-token"]

describe("experiments/demo/study.ts", () => {
  it("declares the seed study's strategies on the shipped base, ships withheld from SAR and prompted as unseen", async () => {
    const source = await readFile(declarationFile, "utf8")
    expect([...source.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1])).toEqual(["sardine"])
    const { declaration, directory } = await Effect.runPromise(loadDeclaration(declarationFile).pipe(Effect.provide(NodeContext.layer)))
    const experiments = (declaration as Study).experiments
    expect(experiments.map((e) => e.name)).toEqual(strategies)
    for (const e of experiments) {
      expect(e.base._tag === "diffusers" && resolve(directory, e.base.path)).toBe(join(repoRoot, "experiments/demo/base"))
      expect(e.data._tag === "synthetic" && e.data.modality === "sar" && e.data.exclude).toEqual(["ships"])
      const unseen = promptsOf(e.generate).filter((p) => typeof p !== "string" && p.split === "unseen")
      expect(unseen.length).toBeGreaterThan(0)
      for (const p of unseen) expect(typeof p !== "string" && p.text).toMatch(/ship/)
      expect(e.evaluate.alignment?.clip && resolve(directory, e.evaluate.alignment.clip)).toBe(join(repoRoot, "experiments/demo/sar-clip"))
    }
    const hybrid = experiments.find((e) => e.name === "hybrid")!
    expect(hybrid.components.token?.token).toBe("<SAR>")
    expect(experiments.find((e) => e.name === "hybrid-no-token")!.components.token).toBeUndefined()
    // The strategies share one prepared training set (the token's caption template aside) and one reference.
    const plan = compilePlan(declaration)
    const kinds = (kind: string) => new Set(plan.steps.filter((s) => s.kind === kind).map((s) => s.key)).size
    expect(kinds("prepare-data")).toBe(3)
    expect(kinds("report")).toBe(1)
  })

  // The same cut-down study on each engine: the torch engine's results must show what the tfjs engine's show.
  it.each(["tfjs", "torch"] as const)(
    "cut down, runs through sardine run --engine %s: the strategies that fine-tune UNet or VAE beat the baseline on amplitude distances and alignment gap",
    async (engine) => {
      const { declaration, directory } = await Effect.runPromise(loadDeclaration(declarationFile).pipe(Effect.provide(NodeContext.layer)))
      const encoded = encodeDeclaration(declaration) as { experiments: Array<Record<string, any>>; [key: string]: unknown }
      const dir = await mkdtemp(join(tmpdir(), "sardine-demo-study-"))
      try {
        const small = {
          ...encoded,
          experiments: encoded.experiments.map((e) => ({
            ...e,
            base: { ...e.base, path: resolve(directory, e.base.path) },
            data: { ...e.data, n: 240 },
            ...(e.train === undefined ? {} : { train: { ...e.train, steps: 120, batchSize: 8, checkpointEvery: 60 } }),
            generate: { ...e.generate, prompts: [e.generate.prompts[0], e.generate.prompts[3]], seeds: [0, 1, 2, 3], steps: 10 },
            evaluate: {
              ...e.evaluate,
              reference: { ...e.evaluate.reference, n: 48 },
              alignment: { ...e.evaluate.alignment, clip: resolve(directory, e.evaluate.alignment.clip) }
            }
          }))
        }
        const file = join(dir, "demo-small.json")
        await writeFile(file, JSON.stringify(small))
        const cache = join(dir, "cache")
        const mlruns = join(dir, "mlruns")
        const run = await sardine(["run", file, "--engine", engine, "--cache-dir", cache, "--tracking-uri", mlruns], { env: { SARDINE_TORCH_THREADS: "1" } })
        expect(run.stderr + run.stdout).toMatch(/demo: \d+ ran, 0 cached, 0 failed, 0 blocked/)
        expect(run.code).toBe(0)
        const reportLine = run.stdout.split("\n").find((l) => l.startsWith("report: "))
        expect(reportLine).toBeDefined()
        expect(existsSync(reportLine!.slice("report: ".length))).toBe(true)

        const evaluations = new Map<string, EvaluationResult>()
        for (const key of await readdir(join(cache, "steps"))) {
          const path = join(cache, "steps", key, "evaluation.json")
          if (!existsSync(path)) continue
          const evaluation = JSON.parse(await readFile(path, "utf8")) as EvaluationResult
          for (const name of evaluation.experiments) evaluations.set(name, evaluation)
        }
        expect([...evaluations.keys()].sort()).toEqual([...strategies].sort())
        const distances = (name: string) => evaluations.get(name)!.amplitude.distances
        const baseline = distances("baseline")
        const gap = (name: string) => evaluations.get(name)!.estimates["prompt_following.gap"]!.value
        for (const name of pixelStrategies) {
          const d = distances(name)
          expect(d.wasserstein, `${name}: Wasserstein-1 against the baseline's`).toBeLessThan(baseline.wasserstein)
          expect(d.js, `${name}: Jensen–Shannon against the baseline's`).toBeLessThan(baseline.js)
          expect(gap(name), `${name}: alignment gap against the baseline's`).toBeGreaterThan(gap("baseline"))
        }
        for (const evaluation of evaluations.values()) {
          expect(evaluation.alignment?.prompts.map((p) => p.split)).toEqual(["seen", "unseen"])
        }

        const runs = await localRuns(mlruns)
        expect(runs.map((r) => r.name).sort()).toEqual(expect.arrayContaining(strategies))
        for (const r of runs) expect(r.status).toBe("FINISHED")
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    },
    900_000
  )
})
