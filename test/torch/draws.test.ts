import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { hashString, mixSeed } from "../../adapters/data/seeded-random.ts"
import { gaussianStream } from "../../adapters/tfjs/sampling/gaussian-noise.ts"
import { drawsFor, DrawPurpose, normals, permutation, philox2x32 } from "../../adapters/tfjs/training/training-draws.ts"
import { temporaryFolder } from "../training/training-run.ts"
import { runPython } from "./torch-worker.ts"

/**
 * The torch engine draws exactly what the tfjs engine draws: the training streams (counter-based, vectorised
 * in numpy), the generation noise (sequential), the key mixing and name hashing — compared bit for bit over
 * every purpose and an SDXL-sized noise draw. (One Python start, ≈ 5 s.)
 */

const script = `
import json, sys
import numpy as np
from sardine_torch import draws as d
cases = json.loads(sys.stdin.read())
out = {}
for name, case in cases.items():
    kind = case["kind"]
    if kind == "normals":
        out[name] = d.TrainingDraws(*case["key"]).normals(case["count"]).view(np.uint32).tolist()
    elif kind == "uniforms":
        out[name] = d.TrainingDraws(*case["key"]).uniforms(case["count"]).tolist()
    elif kind == "integers":
        out[name] = d.TrainingDraws(*case["key"]).integers(0, case["high"], case["count"]).tolist()
    elif kind == "permutation":
        out[name] = d.permutation(d.TrainingDraws(*case["key"]), case["count"]).tolist()
    elif kind == "gaussian":
        out[name] = d.GaussianStream(*case["key"]).values(case["count"]).view(np.uint32).tolist()
    elif kind == "philox":
        a, b = d.philox2x32(np.array([case["key"][0]], dtype=np.uint64), case["key"][1], case["key"][2])
        out[name] = [int(a[0]), int(b[0])]
    elif kind == "mix":
        out[name] = d.mix_seed(*case["key"])
    elif kind == "hash":
        out[name] = d.hash_string(case["text"])
print(json.dumps(out))
`

const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length))

describe("sardine's random streams in the torch worker", () => {
  it("are the tfjs engine's bit for bit: training draws of every purpose, generation noise, keys", async () => {
    const key = (purpose: number, ...rest: Array<number>) => [7, purpose, ...rest]
    const expected: Record<string, unknown> = {}
    const cases: Record<string, unknown> = {}
    const add = (name: string, input: Record<string, unknown>, value: unknown) => {
      cases[name] = input
      expected[name] = value
    }
    for (
      const [purpose, count] of [[DrawPurpose.noise, 4 * 4 * 128 * 128 + 1], [DrawPurpose.latentSample, 1001], [DrawPurpose.vaeSample, 3], [
        DrawPurpose.loraInit,
        64
      ]] as const
    ) {
      add(`normals-${purpose}`, { kind: "normals", key: key(purpose, 12, 1), count }, bits(normals(drawsFor(7, purpose, 12, 1), count)))
    }
    const uniforms = drawsFor(7, DrawPurpose.captionDropout, 3, 0)
    add("uniforms", { kind: "uniforms", key: key(DrawPurpose.captionDropout, 3, 0), count: 20 }, Array.from({ length: 20 }, () => uniforms.uniform()))
    const timesteps = drawsFor(7, DrawPurpose.timesteps, 5, 2)
    add(
      "timesteps",
      { kind: "integers", key: key(DrawPurpose.timesteps, 5, 2), high: 999, count: 16 },
      Array.from({ length: 16 }, () => timesteps.integer(0, 999))
    )
    add("order", { kind: "permutation", key: key(DrawPurpose.dataOrder, 4), count: 1000 }, Array.from(permutation(drawsFor(7, DrawPurpose.dataOrder, 4), 1000)))
    add("gaussian", { kind: "gaussian", key: [3, 1], count: 4097 }, bits(gaussianStream(3, 1).next(4097)))
    // An SDXL latent's worth and more: the worker's lanes and jump matrices, not its word-by-word loop.
    add("gaussian-long", { kind: "gaussian", key: [5, 2], count: 4 * 128 * 128 + 3 }, bits(gaussianStream(5, 2).next(4 * 128 * 128 + 3)))
    const block = new Uint32Array(2)
    philox2x32(0x243f6a88, 0x85a308d3, 0x13198a2e, block)
    add("philox", { kind: "philox", key: [0x243f6a88, 0x85a308d3, 0x13198a2e] }, Array.from(block))
    add("mix", { kind: "mix", key: [1, 2, 4294967295, 123456789] }, mixSeed(1, 2, 4294967295, 123456789))
    add(
      "hash",
      { kind: "hash", text: "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q" },
      hashString("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q")
    )

    const folder = await temporaryFolder("torch-draws")
    try {
      const file = join(folder.dir, "draws.py")
      await writeFile(file, script)
      const result = await runPython(file, [], JSON.stringify(cases))
      expect(result.code, result.stderr).toBe(0)
      const got = JSON.parse(result.stdout) as Record<string, unknown>
      // Random123's known-answer vector for Philox2x32-10 on (0x243f6a88, 0x85a308d3) keyed 0x13198a2e.
      expect(expected.philox).toEqual([0xdd7ce038, 0xf62a4c12])
      for (const name of Object.keys(cases)) expect(got[name], name).toEqual(expected[name])
    } finally {
      await folder.remove()
    }
  }, 120_000)
})
