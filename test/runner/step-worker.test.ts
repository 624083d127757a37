import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { progressEventOf } from "../../framework/runner/progress.ts"
import { fileStudy } from "../support/declarations.ts"
import { nodeCommand, repoRoot } from "../support/run-process.ts"

/** The real command line with the file-working test steps. */
const cli = `${repoRoot}/test/runner/sardine-with-file-steps.ts`

const made: Array<string> = []
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))))

describe("sardine step-worker", () => {
  it("runs the steps asked for on stdin one after another, answers each (a bad request too), and ends with stdin", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-step-worker-"))
    made.push(dir)
    const file = join(dir, "study.json")
    await writeFile(file, canonicalJsonPretty(encodeDeclaration(await Effect.runPromise(decodeDeclaration(fileStudy(6))))))
    const [node, ...argv] = nodeCommand(cli, ["step-worker", file, "--cache-dir", join(dir, "cache"), "--tracking-uri", join(dir, "mlruns")])
    const worker = spawn(node!, argv, { cwd: repoRoot, env: { ...process.env, CI: "true", SARDINE_PROGRESS: "events" }, stdio: ["pipe", "pipe", "pipe"] })
    let stderr = ""
    worker.stderr.on("data", (d) => (stderr += String(d)))
    const exited = new Promise<number | null>((resolve) => worker.on("close", (code) => resolve(code)))
    for (
      const line of [
        JSON.stringify({ step: "full-unet/data", force: false }),
        "full-unet/data",
        JSON.stringify({ step: "full-unet/nope", force: false }),
        JSON.stringify({ step: "full-unet/data", force: false }),
        JSON.stringify({ step: "full-unet/data", force: true })
      ]
    ) worker.stdin.write(`${line}\n`)
    worker.stdin.end()
    expect(await exited, stderr).toBe(0)
    const answers = stderr.split("\n").map(progressEventOf).filter((e) => e?.event === "finished")
    expect(answers.map((a) => a?.event === "finished" && [a.step, a.status])).toEqual([
      ["full-unet/data", "ran"],
      ["", "failed"],
      ["full-unet/nope", "failed"],
      ["full-unet/data", "cached"],
      ["full-unet/data", "ran"]
    ])
    expect(answers[1]?.event === "finished" && answers[1].message).toBe("not a step request: full-unet/data")
    expect(answers[2]?.event === "finished" && answers[2].message).toMatch(/^full-unet\/nope: no such step in file-study; its steps are .*full-unet\/data/)
  })
})
