/**
 * Does a ControlNet trained a few hundred steps on the synthetic label maps follow its conditions (issue 19)?
 * Runs bench/controlnet-layout/study.ts through `sardine run` (tfjs engine) and prints the evaluation's
 * layout agreement of each sample with its own scene's truth against the shuffled level (each sample
 * against another scene's truth: a sample made from scene j's map judged against scene i's truth is a
 * sample generated on a shuffled condition), each the mean over the pairs with its 95 % interval
 * (bootstrap over noise draws, BCa). The trained model beats the shuffled one when the layout interval's
 * lower bound is above the shuffled mean.
 *
 *   node --import tsx bench/controlnet-layout.ts [--steps 1500] [--lr 1e-2] [--scenes 6] [--seed 1] [--engine tfjs|torch] [--cache-dir DIR]
 *
 * Why a bench and not a test: on 2 cores it could not be made to pass in the ≤ 90 s a CI test may take. Measured
 * while writing it (issue 19, a machine shared at load ≈ 22): 300 steps at lr 5e-3, 4 scenes: layout 0.141
 * [0.048, 0.195] against shuffled 0.119 (not beaten); 800 steps at lr 1e-2, 6 scenes: 0.085 [−0.009, 0.134]
 * against 0.004 (not beaten; 136 s of CPU for the whole run); 1500 steps at lr 1e-2, 6 scenes (the defaults):
 * 0.162 [0.110, 0.180] against 0.083 [0.030, 0.136] — beaten, in 1016 s of wall time at that load.
 * On the torch engine (`--engine torch`: the same training draws, but its from_unet draws the embedding's
 * convolutions with torch, so the start differs), the same study's train, generate and paired evaluation run
 * directly on the engine (lr 1e-2, 6 scenes × 4 noise draws, train seed 1, load 11–15; wall time with both
 * Python starts and the sampling): 300 steps 0.003 [−0.093, 0.063] against shuffled 0.008 (199 s); 1000 steps
 * −0.030 [−0.154, 0.043] against 0.031 (537 s); 1500 steps −0.013 [−0.163, 0.083] against −0.070 (542 s).
 * Not beaten: with 4 noise draws the intervals (±0.1) are wider than the effect the tfjs run showed, which a
 * second start did not reproduce; so no CI-sized test of it is honest yet (more draws and seeds, on a GPU).
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
const knobNames = ["steps", "lr", "unet-lr", "batch", "train-scenes", "seed", "scenes", "draws", "scale"]
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
for (const name of ["label-map-controlnet", "untrained-controlnet"]) {
  const { layout, layoutGain, pairs, shuffledLayout } = pairedOf(name)
  console.log(`${name} (${pairs} pairs): own ${show(layout)}  shuffled ${show(shuffledLayout)}  gain ${show(layoutGain)}  beats-shuffled=${layoutGain.low > 0}`)
}
console.log(`wall ${seconds.toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${cpus().length} cores`)
