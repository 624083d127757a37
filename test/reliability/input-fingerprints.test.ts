/**
 * Declared input folders are fingerprinted into the keys of the steps that read them (issue 17,
 * item 6), and a failed data step leaves no work folder (item 9), with real processes and files.
 * The first scenario uses the file-working test steps; the last the real `sardine` and its real
 * data preparation on PNG files.
 * Cost: 13 sardine processes (3 of them the real one, which loads the engine), a few seconds each on a quiet machine.
 */
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { appendFile, cp, mkdir, readFile, rename, utimes, writeFile } from "node:fs/promises"
import { join } from "node:path"
import sharp from "sharp"
import { describe, expect, it } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { Declaration } from "../../framework/declaration/experiment.ts"
import { diffusers, imageFolder } from "../../framework/index.ts"
import { tinySd1, validExperiment } from "../support/declarations.ts"
import { planOf } from "../support/plan-of.ts"
import { run, sardine } from "../support/run-process.ts"
import { cli, minutes, scratch } from "./file-study.ts"

const greyPng = (file: string, level: number) => sharp(Buffer.alloc(32 * 32, level), { raw: { width: 32, height: 32, channels: 1 } }).png().toFile(file)

/** A data folder of two PNG images with their captions. */
const dataFolder = async (dir: string) => {
  await mkdir(dir, { recursive: true })
  await greyPng(join(dir, "a.png"), 90)
  await greyPng(join(dir, "b.png"), 160)
  await writeFile(
    join(dir, "metadata.jsonl"),
    ["{\"file_name\":\"a.png\",\"text\":\"a field\"}", "{\"file_name\":\"b.png\",\"text\":\"a lake\"}", ""].join("\n")
  )
}

const writeDeclaration = async (file: string, input: unknown): Promise<Declaration> => {
  const declaration = await Effect.runPromise(decodeDeclaration(input))
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration)))
  return declaration
}

/** The step ids a dry run lists. */
const wouldRun = (stdout: string) => [...stdout.matchAll(/^ {2}\S+\s+(\S+)/gm)].map((m) => m[1])

describe("declared input folders in the step keys", () => {
  it(
    "editing the data or the base folder in place runs the steps that read it again; content mode ignores a touch; a folder that is gone keeps its keys",
    async () => {
      const dir = await scratch("fingerprints")
      const data = join(dir, "data")
      const base = join(dir, "base")
      await dataFolder(data)
      await cp(tinySd1, base, { recursive: true })
      const file = join(dir, "tiny.json")
      const declare = (fingerprint: "metadata" | "content") =>
        writeDeclaration(
          file,
          validExperiment({
            base: diffusers(base, { family: "sd15", fingerprint }),
            data: imageFolder(data, { unit: "amplitude", resolution: { size: 32 }, fingerprint })
          })
        )
      const cache = join(dir, "cache")
      const tracking = join(dir, "mlruns")
      const sardineWith = (args: ReadonlyArray<string>) => run(cli, [...args, "--cache-dir", cache, ...(args[0] === "run" ? ["--tracking-uri", tracking] : [])])
      const dryRun = async () => wouldRun((await sardineWith(["run", file, "--dry-run"])).stdout)

      await declare("metadata")
      expect((await sardineWith(["run", file])).code).toBe(0)
      expect(await dryRun()).toEqual([])
      // The same bytes written again: a new modification time is an edit in metadata mode.
      await writeFile(join(data, "b.png"), await readFile(join(data, "b.png")))
      expect(await dryRun()).toEqual(["tiny/data", "tiny/latents", "tiny/text", "tiny/train", "tiny/generate", "tiny/evaluate"])
      expect((await sardineWith(["run", file])).stdout).toContain("6 ran, 1 cached")
      await appendFile(join(base, "model_index.json"), " ")
      expect(await dryRun()).toEqual(["tiny/latents", "tiny/text", "tiny/train", "tiny/generate", "tiny/evaluate"])

      await declare("content")
      expect((await sardineWith(["run", file])).stdout).toContain("6 ran, 1 cached")
      const later = new Date(Date.now() + 60_000)
      await utimes(join(data, "a.png"), later, later)
      await utimes(join(base, "unet", "config.json"), later, later)
      expect(await dryRun()).toEqual([])
      await greyPng(join(data, "a.png"), 91)
      expect(await dryRun()).toEqual(["tiny/data", "tiny/latents", "tiny/text", "tiny/train", "tiny/generate", "tiny/evaluate"])
      expect((await sardineWith(["run", file])).code).toBe(0)

      // Data moved away after the run: its steps keep the keys it last had in this cache.
      await rename(data, `${data}-elsewhere`)
      const status = await sardineWith(["status", file])
      expect(status.stderr).toContain(`note: data.path "${data}": ${data} is not there; its steps keep the keys of its contents on `)
      expect(status.stdout).toContain("7 steps, 7 cached, 0 pending")
    },
    minutes(8)
  )

  it("a repaired image is noticed (real data preparation); a failed data step leaves no work folder", async () => {
    const dir = await scratch("repaired-image")
    const data = join(dir, "data")
    await dataFolder(data)
    await writeFile(join(data, "b.png"), "not a PNG")
    const file = join(dir, "tiny.json")
    const cache = join(dir, "cache")
    const runData = () => sardine(["run", file, "--only", "tiny/data", "--cache-dir", cache, "--tracking-uri", join(dir, "mlruns")])
    const declare = (onError: "fail" | "skip") =>
      writeDeclaration(file, validExperiment({ data: imageFolder(data, { unit: "amplitude", resolution: { size: 32 }, onError }) }))
    const dataStep = async (declaration: Declaration) => (await planOf(file, declaration)).steps.find((s) => s.id === "tiny/data")!

    const failing = await dataStep(await declare("fail"))
    const failed = await runData()
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain("b.png")
    expect(existsSync(join(cache, "partial", failing.key))).toBe(false)

    const skipping = await dataStep(await declare("skip"))
    expect((await runData()).code).toBe(0)
    const index = (key: string) =>
      readFile(join(cache, "steps", key, "index.json"), "utf8").then((t) => JSON.parse(t) as { samples: unknown[]; skipped: unknown[] })
    expect((await index(skipping.key)).samples).toHaveLength(1)
    expect((await index(skipping.key)).skipped).toHaveLength(1)

    await greyPng(join(data, "b.png"), 200)
    const repaired = await dataStep(await declare("skip"))
    expect(repaired.key).not.toBe(skipping.key)
    const rerun = await runData()
    expect(rerun.code).toBe(0)
    expect(rerun.stdout).toContain("1 ran, 0 cached")
    expect((await index(repaired.key)).samples).toHaveLength(2)
    expect((await index(repaired.key)).skipped).toHaveLength(0)
  }, minutes(8))
})
