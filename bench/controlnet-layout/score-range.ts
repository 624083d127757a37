/**
 * What the layout-agreement score can see on the bench's condition scenes, with no model at all: each scene's
 * true SAR image against a second acquisition of the same scene (the same layout, its reflectivity texture and
 * speckle drawn again from another stream) — the ceiling a perfect generator reaches — and against the other
 * scenes' truths, the shuffled level. Both with the evaluation's normalisation (mean + 3 std, clipped) and
 * block scales, and the paired gain (own minus shuffled) with its spread over the scenes.
 *
 *   node --import tsx bench/controlnet-layout/score-range.ts [--scenes 6] [--size 32] [--looks 1]
 */
import { generateScene } from "../../adapters/data/synthetic/scene-generator.ts"
import { renderSar } from "../../adapters/data/synthetic/sar-render.ts"
import { SeededRandom } from "../../adapters/data/seeded-random.ts"
import { layoutAgreement, layoutScales } from "../../framework/metrics/paired-layout.ts"
import { normaliseMeanStd } from "../../framework/sar/normalisation.ts"

const option = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return Number(at >= 0 ? process.argv[at + 1]! : fallback)
}
const scenes = option("scenes", "6")
const size = option("size", "32")
const looks = option("looks", "1")
// The bench's generate.conditions: synthetic({ n: scenes, size, seed: 5, looks }).
const spec = { size, seed: 5, looks, exclude: [], lookDirection: "right", incidenceAngle: 35 } as const
const image = (name: string, amplitude: Float32Array) => ({ name, width: size, height: size, data: normaliseMeanStd(amplitude) })
const truths = Array.from({ length: scenes }, (_, i) => {
  const scene = generateScene(spec, i, { sar: true, optical: false })
  // Stream 2 is the generator's SAR stream; 7 is no stream the generator uses: another acquisition of the layout.
  const again = renderSar(scene.layout, spec, new SeededRandom(spec.seed, i, 7))
  return { truth: image(scene.name, scene.sar!.amplitude), again: image(`${scene.name} again`, again.amplitude) }
})
const scales = layoutScales(size, size)
const rows = truths.map(({ again, truth }, i) => {
  const own = layoutAgreement(again, truth, scales).score
  const others = truths.filter((_, j) => j !== i).map((t) => layoutAgreement(again, t.truth, scales).score)
  const shuffled = others.reduce((s, v) => s + v, 0) / others.length
  return { own, shuffled, gain: own - shuffled }
})
const mean = (values: ReadonlyArray<number>) => values.reduce((s, v) => s + v, 0) / values.length
for (const [i, r] of rows.entries()) console.log(`scene ${i}: own ${r.own.toFixed(3)}  shuffled ${r.shuffled.toFixed(3)}  gain ${r.gain.toFixed(3)}`)
console.log(
  `scales ${scales.join(", ")}; mean own ${mean(rows.map((r) => r.own)).toFixed(3)}, shuffled ${mean(rows.map((r) => r.shuffled)).toFixed(3)}, gain ${
    mean(rows.map((r) => r.gain)).toFixed(3)
  } (min ${Math.min(...rows.map((r) => r.gain)).toFixed(3)})`
)
