import { existsSync } from "node:fs"
import { mkdtemp, readFile, readdir, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { assert, describe, expect, it } from "vitest"
import { trainingMetrics } from "../../framework/metrics/metric-catalog.ts"
import { mlflowPython } from "../mlflow/server-process.ts"
import { localRuns } from "../support/local-mlruns.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

const declaration = `${repoRoot}/experiments/examples/tiny-hybrid.ts`

/** The names and shapes in a safetensors header. */
const safetensorsHeader = async (file: string): Promise<Record<string, { shape: Array<number> }>> => {
  const bytes = await readFile(file)
  const length = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString("utf8")) as Record<string, { shape: Array<number> }>
  delete header.__metadata__
  return header
}

describe("experiments/examples/tiny-hybrid.ts end to end", () => {
  it("runs through `sardine run`, is tracked, and exports its LoRA, merged pipeline and <SAR> embedding", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-tiny-hybrid-"))
    const cache = join(dir, "cache")
    const mlruns = join(dir, "mlruns")
    const result = await sardine(["run", declaration, "--cache-dir", cache, "--tracking-uri", mlruns])
    expect(result.stderr).toContain("done  train")
    expect(result.code).toBe(0)
    // The held-out validation data is prepared and encoded in steps of its own.
    expect(result.stdout).toContain("tiny-hybrid: 8 ran, 0 cached, 0 failed, 0 blocked")

    // The evaluation holds finite numbers for all three metric families.
    const steps = await readdir(join(cache, "steps"))
    const evaluations = []
    for (const key of steps) {
      if (existsSync(join(cache, "steps", key, "evaluation.json"))) {
        evaluations.push(JSON.parse(await readFile(join(cache, "steps", key, "evaluation.json"), "utf8")))
      }
    }
    expect(evaluations).toHaveLength(1)
    const [evaluation] = evaluations
    for (const value of Object.values(evaluation.amplitude.distances)) expect(Number.isFinite(value)).toBe(true)
    expect(Number.isFinite(evaluation.texture.canberra)).toBe(true)
    expect(evaluation.alignment.prompts.map((p: { split: string }) => p.split)).toEqual(["seen", "unseen"])
    expect(evaluation.generated.images).toBe(4)

    const [run] = await localRuns(mlruns)
    assert.isDefined(run)
    expect(run.name).toBe("tiny-hybrid")
    expect(run.status).toBe("FINISHED")
    expect(run.params["components.token.token"]).toBe("<SAR>")
    expect(run.tags["sardine.backend"]).toBe("wasm")
    // The held-out loss from before the first update, then every 10 steps, read back by MLflow's own client.
    const { stdout } = await promisify(execFile)(mlflowPython, [join(repoRoot, "tools/check_local_store.py"), mlruns], { maxBuffer: 64 * 1024 * 1024 })
    const tracked = (JSON.parse(stdout) as { experiments: Array<{ runs: Array<{ metrics: Record<string, Array<[number, number, number]>> }> }> })
      .experiments.flatMap((e) => e.runs)
    const validation = tracked[0]!.metrics[trainingMetrics.validationLoss]!
    expect(validation.map(([step]) => step)).toEqual([0, 10, 20])
    for (const [, , value] of validation) expect(Number.isFinite(value) && value > 0).toBe(true)

    const exported = async (format: string, out: string) => {
      const r = await sardine(["export", declaration, "--format", format, "--out", out, "--cache-dir", cache])
      expect(r.stderr + r.stdout).toContain(`wrote ${format}`)
      expect(r.code).toBe(0)
    }
    // The UNet trained fully: a LoRA file cannot carry it, so kohya is refused rather than written without it.
    const kohya = join(dir, "tiny-hybrid.kohya.safetensors")
    const refused = await sardine(["export", declaration, "--format", "kohya", "--out", kohya, "--cache-dir", cache])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("a LoRA file carries adapters only, not the fully trained unet; export the whole trained model with --format diffusers")
    expect(existsSync(kohya)).toBe(false)

    const merged = join(dir, "merged")
    await exported("diffusers", merged)
    for (const part of ["unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"]) {
      expect((await stat(join(merged, part))).isDirectory()).toBe(true)
    }
    const listing = await sardine(["weights", merged, "--json"])
    expect(listing.code).toBe(0)
    expect((JSON.parse(listing.stdout) as { kind: string }).kind).toBe("pipeline")

    const embedding = join(dir, "sar.safetensors")
    await exported("embedding", embedding)
    const vectors = await safetensorsHeader(embedding)
    expect(Object.keys(vectors).sort()).toEqual(["clip_g", "clip_l"])
    expect(vectors.clip_l!.shape[0]).toBe(1)
  })
})
