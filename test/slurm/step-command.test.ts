import { Effect } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { planOf } from "../support/plan-of.ts"
import { fileStudy } from "../support/declarations.ts"
import { localRuns } from "../support/local-mlruns.ts"
import { repoRoot, run, start } from "../support/run-process.ts"

/** `sardine step` is what each SLURM job runs; here it runs directly, as a job would. */
const cli = `${repoRoot}/test/runner/sardine-with-file-steps.ts`

/** Folders the tests made, removed at the end. */
const made: Array<string> = []
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))))

const setUp = async (trainSteps = 6) => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-step-"))
  made.push(dir)
  const declaration = await Effect.runPromise(decodeDeclaration(fileStudy(trainSteps)))
  const file = join(dir, "study.json")
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration)))
  const plan = await planOf(file, declaration)
  const tracking = join(dir, "mlruns")
  const cache = join(dir, "cache")
  const step = (id: string, env: Record<string, string> = {}) => run(cli, ["step", file, id, "--cache-dir", cache, "--tracking-uri", tracking], { env })
  return { dir, file, plan, tracking, cache, step, keyOf: (id: string) => plan.steps.find((s) => s.id === id)!.key }
}

const filesIn = async (dir: string) => {
  const files: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) if (name !== "sardine-step.json") files[name] = await readFile(join(dir, name), "utf8")
  return files
}

describe("sardine step", () => {
  it("runs one step in this process as `sardine run` would, then finds it cached", async () => {
    const { cache, dir, file, keyOf, step, tracking } = await setUp()
    const first = await step("full-unet/data")
    expect(first.code).toBe(0)
    expect(first.stdout).toContain("full-unet/data: ran")
    const manifest = JSON.parse(await readFile(join(cache, "steps", keyOf("full-unet/data"), "sardine-step.json"), "utf8")) as { id: string }
    expect(manifest.id).toBe("full-unet/data")

    const local = join(dir, "local")
    expect((await run(cli, ["run", file, "--cache-dir", local, "--tracking-uri", join(dir, "local-mlruns"), "--only", "full-unet/data"])).code).toBe(0)
    expect(await filesIn(join(cache, "steps", keyOf("full-unet/data")))).toEqual(await filesIn(join(local, "steps", keyOf("full-unet/data"))))

    const again = await step("full-unet/data")
    expect(again.code).toBe(0)
    expect(again.stdout).toContain("full-unet/data: cached")
    // Both found the runs by their content keys, one per experiment and the study, not one per call; a step opens
    // only the study's run and those of the experiments it serves (the data of both trained ones, not the baseline's).
    expect((await localRuns(tracking)).map((r) => r.name)).toEqual(["file-study", "full-unet", "lora-unet"])
  })

  it("refuses a step whose inputs are not cached, and a step the plan does not have", async () => {
    const { cache, keyOf, step } = await setUp()
    const early = await step("full-unet/latents")
    expect(early.code).toBe(1)
    expect(early.stderr).toContain(
      `full-unet/latents: its input full-unet/data (data) is not in the cache (${join(cache, "steps", keyOf("full-unet/data"))}); run it first`
    )
    expect(existsSync(join(cache, "steps", keyOf("full-unet/latents")))).toBe(false)
    const unknown = await step("full-unet/nope")
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("full-unet/nope: no such step in file-study; its steps are full-unet/reference, full-unet/data,")
  })

  it("SIGTERM (what scancel and a time limit send) stops it with nothing committed; the next call resumes", async () => {
    const { cache, file, keyOf, step, tracking } = await setUp(40)
    expect((await run(cli, ["run", file, "--cache-dir", cache, "--tracking-uri", tracking, "--only", "full-unet/latents,full-unet/text"])).code).toBe(0)
    const checkpoint = join(cache, "partial", keyOf("full-unet/train"), "checkpoints", "latest.json")
    const job = start(cli, ["step", file, "full-unet/train", "--cache-dir", cache, "--tracking-uri", tracking], { env: { FILE_STEPS_DELAY_MS: "40" } })
    const deadline = Date.now() + 60_000
    while (!existsSync(checkpoint)) {
      if (Date.now() > deadline) throw new Error(`no checkpoint; output:\n${job.output()}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    job.child.kill("SIGTERM")
    const stopped = await job.done
    expect(stopped.code).toBe(143)
    expect(stopped.stderr).toContain("killed")
    expect(existsSync(join(cache, "steps", keyOf("full-unet/train")))).toBe(false)
    expect(existsSync(join(cache, "locks", keyOf("full-unet/train")))).toBe(false)

    const resumed = await step("full-unet/train")
    expect(resumed.code).toBe(0)
    expect(resumed.stderr).toMatch(/resuming at iteration \d+/)
    expect(resumed.stdout).toContain("full-unet/train: ran")
  })
})
