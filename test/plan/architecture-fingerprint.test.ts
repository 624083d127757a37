import { Effect } from "effect"
import { cp, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { clipModel, frozen, full, synthetic } from "../../framework/index.ts"
import { validExperiment } from "../support/declarations.ts"
import { planOf } from "../support/plan-of.ts"
import { repoRoot } from "../support/run-process.ts"

/**
 * An architecture folder (a scratch() base's, a CLIP model's) enters its steps' keys by content: a config saved
 * again unchanged (a new modification time) keeps the key, and the trainings made from it; an edited value
 * changes it. Real folders planned as `sardine` plans them; < 1 s.
 */

const made: Array<string> = []
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))))

/** A copy of a shipped architecture folder, and the key of the step that reads it as the declaration plans it. */
const architectureCopy = async (shipped: string, declare: (architecture: string) => unknown, kind: string) => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-architecture-fingerprint-"))
  made.push(dir)
  const architecture = join(dir, "architecture")
  await cp(join(repoRoot, shipped), architecture, { recursive: true })
  const file = join(dir, "declaration.json")
  const declaration = await Effect.runPromise(decodeDeclaration(declare(architecture)))
  const key = async () => (await planOf(file, declaration)).steps.find((s) => s.kind === kind)!.key
  /** Writes `config` (relative to the folder) again, edited by `edit` when given, dated a minute later. */
  const rewrite = async (config: string, edit?: (json: Record<string, unknown>) => Record<string, unknown>) => {
    const path = join(architecture, config)
    const text = await readFile(path, "utf8")
    await writeFile(path, edit === undefined ? text : JSON.stringify(edit(JSON.parse(text) as Record<string, unknown>)))
    const later = new Date(Date.now() + 60_000)
    await utimes(path, later, later)
  }
  return { key, rewrite }
}

describe("an architecture folder in the keys", () => {
  it("a scratch() base: saved unchanged keeps the init-model key, an edited config changes it", async () => {
    const { key, rewrite } = await architectureCopy("experiments/demo/architecture", (architecture) =>
      validExperiment({
        base: { _tag: "scratch", architecture, family: "sd15", seed: 3 },
        components: { unet: frozen(), vae: full({ lr: 1e-4 }) }
      }), "init-model")
    const before = await key()
    await rewrite("unet/config.json")
    expect(await key()).toBe(before)
    await rewrite("unet/config.json", (json) => ({ ...json, norm_eps: 1e-6 }))
    expect(await key()).not.toBe(before)
  })

  it("a CLIP model's architecture: the same for its train-clip step", async () => {
    const { key, rewrite } = await architectureCopy("experiments/demo/sar-clip-architecture", (architecture) =>
      clipModel({
        name: "clip",
        architecture,
        data: synthetic({ n: 4, size: 32, seed: 1 }),
        train: { steps: 2 }
      }), "train-clip")
    const before = await key()
    await rewrite("config.json")
    expect(await key()).toBe(before)
    await rewrite("config.json", (json) => ({ ...json, logit_scale_init_value: 1 }))
    expect(await key()).not.toBe(before)
  })
})
