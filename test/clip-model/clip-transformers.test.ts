import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ClipScorersLive } from "../../adapters/clip-scorer/clip-scorers-live.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { ClipScorers } from "../../framework/services/scorer.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot } from "../support/run-process.ts"

/**
 * The CLIP folders sardine trained and exported for the demo (experiments/demo/sar-clip, the judge
 * experiments/demo/scene-clip) load in transformers, their real consumer: `CLIPModel.from_pretrained` reports no
 * missing, unexpected or mismatched weight, `CLIPTokenizer` reads the tokenizer, and the normalised projected text
 * embeddings transformers computes equal those sardine's scorer computes, to 1e-4.
 */
const captions = ["SAR image of a town", "SAR image of a lake with a ship surrounded by forest", "SAR image of farmland"]

describe.each(["experiments/demo/sar-clip", "experiments/demo/scene-clip"])("the shipped CLIP folder %s", (folder) => {
  it("loads in transformers with every weight, and embeds text as sardine's scorer does", async () => {
    const script = join(repoRoot, "test/clip-model/load_clip_in_transformers.py")
    const printed = execFileSync(referencePython(), [script, join(repoRoot, folder), ...captions], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
    const reference = JSON.parse(printed) as { loading: Record<string, number>; texts: Array<Array<number>> }
    expect(reference.loading).toEqual({ missing_keys: 0, unexpected_keys: 0, mismatched_keys: 0, error_msgs: 0 })
    await Effect.runPromise(selectBackend("wasm"))
    const ours = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(Effect.flatMap(ClipScorers, (s) => s.load(join(repoRoot, folder))), (scorer) => scorer.embedTexts(captions)))
        .pipe(Effect.provide(ClipScorersLive))
    )
    expect(ours.dim).toBe(reference.texts[0]!.length)
    let largest = 0
    reference.texts.forEach((row, i) => row.forEach((v, k) => (largest = Math.max(largest, Math.abs(v - ours.data[i * ours.dim + k]!)))))
    console.log(`${folder}: largest text-embedding difference, transformers vs sardine: ${largest}`)
    expect(largest).toBeLessThan(1e-4)
  }, 120_000)
})
