/**
 * A damaged finished step is not trusted (issue 17, item 5), with real processes and files: sizes are
 * checked by `run`, `status` and before a step reads an input; contents by `verify`, which repairs
 * with --repair; `run --force` and `clean` exist.
 * Cost: 18 sardine processes, a few seconds each on a quiet 2-core machine.
 */
import { existsSync } from "node:fs"
import { mkdir, readFile, readdir, rm, truncate, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ranksFolder } from "../../framework/runner/resume-point.ts"
import { fileStudyIn, minutes } from "./file-study.ts"

const read = (file: string) => readFile(file, "utf8")

describe("damaged outputs", () => {
  it("a truncated or deleted output file is reported by status and run again by run; a damaged input fails the step reading it", async () => {
    const s = await fileStudyIn("damaged-sizes")
    expect((await s.sardine(["run", s.file])).code).toBe(0)
    const model = join(s.cache, "steps", s.keyOf("full-unet/train"), "model.json")
    const metrics = join(s.cache, "steps", s.keyOf("lora-unet/evaluate"), "metrics.json")
    const sample = join(s.cache, "steps", s.keyOf("full-unet/data"), "sample-1.txt")
    const [modelBefore, metricsBefore] = await Promise.all([read(model), read(metrics)])
    await truncate(model, 10)
    await rm(metrics)

    const status = await s.sardine(["status", s.file])
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/train\s+full-unet\/train\s+damaged/)
    expect(status.stdout).toContain(`full-unet/train: model.json has 10 bytes, ${modelBefore.length} when committed`)
    expect(status.stdout).toContain("lora-unet/evaluate: metrics.json is missing")
    expect(status.stdout).toContain(`${s.plan.steps.length - 2} cached, 2 damaged, 0 pending`)

    // A damaged input is named by the step that would read it, before it runs.
    await truncate(sample, 3)
    const latents = await s.sardine(["step", s.file, "full-unet/latents", "--force"])
    expect(latents.code).toBe(1)
    expect(latents.stderr).toContain("full-unet/latents: its input full-unet/data (data) is damaged: sample-1.txt has 3 bytes, 65 when committed")

    const rerun = await s.sardine(["run", s.file])
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).toContain("full-unet/train: its output is damaged (model.json has 10 bytes")
    expect(rerun.stdout).toContain(`file-study: 3 ran, ${s.plan.steps.length - 3} cached`)
    expect(await read(model)).toBe(modelBefore)
    expect(await read(metrics)).toBe(metricsBefore)
  }, minutes(5))

  it("a changed byte keeps the size: verify finds it by its SHA-256 and exits 1; verify --repair runs the step again", async () => {
    const s = await fileStudyIn("damaged-bytes")
    expect((await s.sardine(["run", s.file])).code).toBe(0)
    const samples = join(s.cache, "steps", s.keyOf("baseline/generate"), "samples.txt")
    const before = await read(samples)
    await writeFile(samples, `${before[0] === "0" ? "1" : "0"}${before.slice(1)}`)

    expect((await s.sardine(["status", s.file])).stdout).toContain(`${s.plan.steps.length} cached, 0 pending`)
    const verify = await s.sardine(["verify", s.file])
    expect(verify.code).toBe(1)
    expect(verify.stdout).toMatch(/damaged {4}baseline\/generate: samples\.txt has changed \(SHA-256 \w+…, \w+… when committed\)/)
    expect(verify.stdout).toContain(`${s.plan.steps.length} cached outputs checked`)
    expect(verify.stderr).toContain("1 cached output(s) damaged: baseline/generate; `sardine verify --repair` runs them again")

    const repair = await s.sardine(["verify", s.file, "--repair"])
    expect(repair.code).toBe(0)
    expect(repair.stdout).toContain("repairing: running baseline/generate again")
    expect(repair.stdout).toContain("file-study: 1 ran")
    expect(await read(samples)).toBe(before)
    const again = await s.sardine(["verify", s.file])
    expect(again.code).toBe(0)
    expect(again.stdout).toContain(", 0 damaged, 0 not in the cache")
  }, minutes(5))

  it("run --force runs named steps again from scratch, and only them; --force all runs every selected step", async () => {
    const s = await fileStudyIn("force")
    expect((await s.sardine(["run", s.file])).code).toBe(0)
    const dry = await s.sardine(["run", s.file, "--force", "full-unet/train", "--dry-run"])
    expect(dry.stdout).toMatch(/would run:\n {2}train +full-unet\/train +\w+ +\(forced\)\n$/)
    const forced = await s.sardine(["run", s.file, "--force", "full-unet/train"])
    expect(forced.code).toBe(0)
    expect(forced.stderr).toContain("start  train          full-unet/train")
    expect(forced.stderr).not.toContain("resuming")
    expect(forced.stdout).toContain(`file-study: 1 ran, ${s.plan.steps.length - 1} cached`)
    const all = await s.sardine(["run", s.file, "--force", "all", "--only", "baseline/evaluate"])
    expect(all.stdout).toContain("file-study: 3 ran, 0 cached")
    const unknown = await s.sardine(["run", s.file, "--force", "nope"])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("--force nope: no step has this id or kind (or use --force all)")
  }, minutes(5))

  it("clean removes what the declaration does not use and says how much; --dry-run only lists", async () => {
    const s = await fileStudyIn("clean")
    expect((await s.sardine(["run", s.file])).code).toBe(0)
    const stray = join(s.cache, "steps", "0123456789abcdef0123")
    const leftover = join(s.cache, "partial", s.keyOf("full-unet/data"))
    const resumable = join(s.cache, "partial", s.keyOf("full-unet/train"))
    for (const dir of [stray, leftover, resumable]) await mkdir(dir, { recursive: true })
    await writeFile(join(stray, "weights.bin"), new Uint8Array(300_000))
    await writeFile(join(leftover, "sample-0.txt"), "half")
    // What a killed multi-process training's launcher leaves beside its checkpoints.
    const ranks = join(resumable, ranksFolder)
    await mkdir(ranks)
    await writeFile(join(ranks, "rank-0.pid"), "4242")
    await writeFile(join(resumable, "checkpoint.bin"), "kept")
    const temporary = join(s.cache, "steps", `.${s.keyOf("report")}.4242-0badc0de.tmp`)
    await mkdir(temporary)

    const dry = await s.sardine(["clean", s.file, "--dry-run"])
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain(`would remove ${stray}  (0.3 MB): output of a step no given declaration has`)
    expect(dry.stdout).toContain(`would remove ${leftover}  (0.0 MB): work folder of full-unet/data, which starts over when run`)
    expect(dry.stdout).toContain(`would remove ${temporary}  (0.0 MB): left by an interrupted write`)
    expect(dry.stdout).toContain(
      `would remove ${ranks}  (0.0 MB): the training processes' shared folder of full-unet/train, left by a killed launcher (its checkpoints stay)`
    )
    expect(dry.stdout).toContain("would remove 4 item(s), 0.3 MB")
    expect([stray, leftover, temporary, ranks].every(existsSync)).toBe(true)

    const clean = await s.sardine(["clean", s.file])
    expect(clean.code).toBe(0)
    expect(clean.stdout).toContain("removed 4 item(s), 0.3 MB")
    expect([stray, leftover, temporary, ranks].some(existsSync)).toBe(false)
    // The declaration's outputs, and an interrupted training's work folder, stay.
    expect(existsSync(join(resumable, "checkpoint.bin"))).toBe(true)
    expect((await readdir(join(s.cache, "steps"))).sort()).toEqual(s.plan.steps.map((step) => step.key).sort())
    expect((await s.sardine(["run", s.file])).stdout).toContain(`0 ran, ${s.plan.steps.length} cached`)
  }, minutes(5))
})
