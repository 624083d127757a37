/**
 * Does a ControlNet trained a few hundred steps on the synthetic label maps follow its conditions (issue 19)?
 * Runs bench/controlnet-layout/study.ts through `sardine run` and prints, for the trained ControlNet and for the
 * same one sampled at scale 0 (zero residuals: the untrained floor), the evaluation's layout agreement of each
 * sample with its own scene's truth, the shuffled level (the mean over the other scenes' truths) and the layout
 * gain — own minus shuffled, pair by pair, the same sample against two truths — each the mean over the pairs with
 * its 95 % interval (bootstrap over noise draws, BCa). The ControlNet follows its conditions when the gain's
 * interval is above 0. The study's defaults are the recipe; each knob given here overrides one.
 *
 *   node --import tsx bench/controlnet-layout.ts [--engine tfjs|torch] [--steps 400] [--lr 1e-2] [--unet-lr 5e-4 (0: frozen)]
 *     [--batch 16] [--train-scenes 1200] [--seed 1] [--scenes 8] [--draws 8] [--scale 1] [--cache-dir DIR]
 *     [--on base|hybrid] [--input label-map|optical]
 *
 * Measured on torch (SARDINE_TORCH_THREADS=1, nice 10, a shared 2-core machine at load 7–10; 8 scenes × 8 draws,
 * 1,200 training scenes, seed 1): UNet frozen, ControlNet lr 1e-3, 300 steps × 8: gain 0.005 [−0.021, 0.039]
 * (nothing); lr 1e-2: 0.080 [0.064, 0.121], sampled at scale 2: 0.138 [0.116, 0.187], 1000 steps: 0.329 [0.297,
 * 0.360]. UNet full 5e-4 beside it (the recipe), batch 16: 200 steps 0.168 [0.153, 0.190], 400 steps 0.327 [0.296,
 * 0.361]; the scale-0 floor −0.03 to −0.05. What the score can reach (bench/controlnet-layout/score-range.ts: the
 * true image against a second acquisition of its scene): 0.75. 64 training scenes (the earlier default) are
 * memorised; the earlier unpaired comparison (own level against the shuffled one, 4 draws) had intervals of ±0.1.
 * On tfjs (its from_unet start is another draw; its losses follow torch's step by step) the recipe at 200 steps did
 * not show layout (gain −0.023 [−0.044, 0.002]), at 400 steps it did: 0.252 [0.233, 0.282], the floor −0.049; 1.4 to
 * 3.9 s/step at load 8–10 (400 steps: 9 min). 250 steps on 256 scenes, 6 scenes × 6 draws, torch, over train seeds
 * 1, 2, 3: 0.227 [0.180, 0.247], 0.202 [0.171, 0.221], 0.167 [0.133, 0.197]; the floor −0.009, −0.011, −0.003, each
 * interval around 0.
 * --on hybrid (the demo's conditioned strategies: a ControlNet alone over the demo's trained hybrid-no-token,
 * frozen), tfjs, label maps on the bench's 1,200 scenes (seed 1): 200 steps × 16 gain −0.017 [−0.030, −0.005], 400 × 8
 * (the demo's) 0.080 [0.068, 0.101], the floor −0.038 [−0.056, −0.025]; training 11 min 37 s and 9 min 45 s at load
 * 10–16. Optical images on the demo's data (--input optical, 400 × 8): gain −0.011 [−0.027, 0.003], no layout yet
 * (17 min 32 s of training at load 11–18). The demo's label-map strategy on its own data, 6 scenes × 6 draws (CI's
 * test/controlnet/controlnet-layout.test.ts runs it on torch): tfjs 0.126 [0.108, 0.150], torch 0.049 [0.029, 0.061],
 * the floor −0.015 on both.
 * The load average is printed with the wall time.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { EvaluationResult } from "../framework/steps/evaluation-result.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const option = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 ? process.argv[at + 1]! : fallback
}
// The study's knobs given on the command line (the study's defaults are the recipe).
const knobNames = ["steps", "lr", "unet-lr", "batch", "train-scenes", "seed", "scenes", "draws", "scale", "on", "input"]
const knobs = Object.fromEntries(knobNames.flatMap((name) => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 ? [[name.toUpperCase().replace("-", "_"), process.argv[at + 1]!]] : []
}))
const engine = option("engine", "tfjs")
const cacheDir = option("cache-dir", mkdtempSync(join(tmpdir(), "sardine-controlnet-layout-")))
const study = join(root, "bench", "controlnet-layout", "study.ts")
const env = { ...process.env, ...Object.fromEntries(Object.entries(knobs).map(([name, value]) => [`SARDINE_BENCH_${name}`, value])) }
const sardine = (args: ReadonlyArray<string>, stdio: "inherit" | "pipe") =>
  execFileSync(process.execPath, [join(root, "bin", "sardine.js"), ...args, "--cache-dir", cacheDir, "--engine", engine, study], {
    cwd: root,
    stdio,
    env,
    maxBuffer: 1 << 28
  })

const started = Date.now()
sardine(["run", "--tracking-uri", join(cacheDir, "mlruns")], "inherit")
const seconds = (Date.now() - started) / 1000

// This run's evaluate steps, by their content keys (a shared --cache-dir holds other runs' too).
const plan = JSON.parse(sardine(["plan", "--json"], "pipe").toString()) as { steps: ReadonlyArray<{ id: string; key: string }> }
const pairedOf = (name: string) => {
  const step = plan.steps.find((s) => s.id === `${name}/evaluate`)
  if (step === undefined) throw new Error(`the plan has no step ${name}/evaluate`)
  const paired = (JSON.parse(readFileSync(join(cacheDir, "steps", step.key, "evaluation.json"), "utf8")) as EvaluationResult).paired
  if (paired === undefined) throw new Error(`${name}: no paired evaluation in ${cacheDir}`)
  const { layout, layoutGain, shuffledLayout } = paired.intervals
  if (layout === undefined || shuffledLayout === undefined || layoutGain === undefined) throw new Error(`${name}: no layout intervals (a single scene?)`)
  return { pairs: paired.pairs.length, layout, shuffledLayout, layoutGain }
}
const show = (e: { value: number; low: number; high: number }) => `${e.value.toFixed(3)} [${e.low.toFixed(3)}, ${e.high.toFixed(3)}]`
console.log(`engine=${engine} ${Object.entries(knobs).map(([name, value]) => `${name.toLowerCase()}=${value}`).join(" ")}`)
for (const name of [`${option("input", "label-map")}-controlnet`, "untrained-controlnet"]) {
  const { layout, layoutGain, pairs, shuffledLayout } = pairedOf(name)
  console.log(`${name} (${pairs} pairs): own ${show(layout)}  shuffled ${show(shuffledLayout)}  gain ${show(layoutGain)}  beats-shuffled=${layoutGain.low > 0}`)
}
console.log(`wall ${seconds.toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${cpus().length} cores`)
