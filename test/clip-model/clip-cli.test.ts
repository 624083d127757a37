import { Effect } from "effect"
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { mkdtemp, readdir } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, afterAll, beforeAll, describe, expect, it } from "vitest"
import { ClipScorersLive } from "../../adapters/clip-scorer/clip-scorers-live.ts"
import { ClipScorers } from "../../framework/services/scorer.ts"
import { localRuns } from "../support/local-mlruns.ts"
import { sardine } from "../support/run-process.ts"

/**
 * A clipModel declaration through the real CLI: `sardine run` prepares the pairs and trains the CLIP
 * (tracked in MLflow), a rerun finds it cached, and `sardine export --format clip` hands out the
 * trained CLIPModel folder, which the CLIP scorer loads.
 */

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sardine-clip-cli-"))
  cpSync("test/fixtures/clip-model/tiny-clip", join(dir, "architecture"), { recursive: true, filter: (source) => !source.endsWith("model.safetensors") })
  writeFileSync(
    join(dir, "tiny-clip.json"),
    JSON.stringify({
      kind: "clip",
      name: "tiny-sar-clip",
      architecture: "architecture",
      seed: 1,
      data: { _tag: "synthetic", n: 8, size: 16, seed: 2 },
      train: { steps: 3, batchSize: 4, checkpointEvery: 2 }
    })
  )
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("sardine run / export on a clipModel declaration", () => {
  it("trains, tracks, caches and exports the CLIP", async () => {
    const file = join(dir, "tiny-clip.json")
    const cache = join(dir, "cache")
    const mlruns = join(dir, "mlruns")
    const first = await sardine(["run", file, "--cache-dir", cache, "--tracking-uri", mlruns])
    expect(first.stderr).toContain("done  train-clip")
    expect(first.code).toBe(0)
    const again = await sardine(["run", file, "--cache-dir", cache, "--tracking-uri", mlruns])
    expect(again.code).toBe(0)
    expect(again.stdout).toContain("0 ran, 2 cached")

    const [run] = await localRuns(mlruns)
    assert.isDefined(run)
    expect(run.name).toBe("tiny-sar-clip")
    expect(run.status).toBe("FINISHED")
    const metrics = await readdir(join(mlruns, readdirSync(mlruns).find((e) => existsSync(join(mlruns, e, run.id)))!, run.id, "metrics"), { recursive: true })
    expect(metrics).toEqual(expect.arrayContaining(["loss", "logit_scale", "lr", "accuracy/image_to_text"]))

    const out = join(dir, "exported")
    const exported = await sardine(["export", file, "--format", "clip", "--out", out, "--cache-dir", cache])
    expect(exported.stdout).toContain(`tiny-sar-clip: wrote clip to ${out}`)
    expect(exported.code).toBe(0)
    const model = (await readdir(join(cache, "steps"))).map((key) => join(cache, "steps", key, "model")).find(existsSync)!
    expect(readdirSync(out).sort()).toEqual(readdirSync(model).sort())
    for (const name of readdirSync(out)) expect(Buffer.compare(readFileSync(join(out, name)), readFileSync(join(model, name))), name).toBe(0)
    const dim = await Effect.runPromise(
      Effect.scoped(Effect.map(Effect.flatMap(ClipScorers, (s) => s.load(out)), (s) => s.dim)).pipe(Effect.provide(ClipScorersLive))
    )
    expect(dim).toBe(12)

    const wrong = await sardine(["export", file, "--format", "kohya", "--out", join(dir, "x.safetensors"), "--cache-dir", cache])
    expect(wrong.code).toBe(1)
    expect(wrong.stderr + wrong.stdout).toContain(`${file} declares a CLIP model; export it with --format clip`)
  })

  it("export names the step to run when the CLIP has not been trained", async () => {
    const result = await sardine([
      "export",
      join(dir, "tiny-clip.json"),
      "--format",
      "clip",
      "--out",
      join(dir, "none"),
      "--cache-dir",
      join(dir, "empty-cache")
    ])
    expect(result.code).toBe(1)
    expect(result.stderr + result.stdout).toMatch(/train has not finished \(no .*\); run `sardine run .*tiny-clip.json` first/)
    expect(existsSync(join(dir, "none"))).toBe(false)
  })
})
