/**
 * Step implementations that do small but real work on files, for testing the runner without
 * the engine. `train` follows the engines' resume protocol: it checkpoints its state (including
 * its random-number state) into the work folder's `checkpoints/latest.json` every `checkpointEvery`
 * iterations, atomically, and continues from the last checkpoint when the folder holds one.
 */
import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import { mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { latestCheckpointFile } from "../../framework/runner/resume-point.ts"
import type { StepHandlers } from "../../framework/runner/step-handler.ts"
import { StepFailed } from "../../framework/runner/step-handler.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"

const writeAtomic = (file: string, text: string) =>
  Effect.promise(async () => {
    await writeFile(`${file}.tmp`, text)
    await rename(`${file}.tmp`, file)
  })

const read = (file: string) => Effect.tryPromise(() => readFile(file, "utf8"))

const digest = (text: string) => createHash("sha256").update(text).digest("hex")

/** xorshift32: the whole generator state is one integer, so it checkpoints exactly. */
const nextRandom = (state: number): number => {
  let x = state
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  return x >>> 0
}

interface TrainState {
  /** Iterations done: the `step` of the resume protocol. */
  readonly step: number
  readonly rng: number
  readonly weights: ReadonlyArray<number>
}

/** Milliseconds each train iteration sleeps, so a test can interrupt mid-step. */
const iterationDelayMs = Number(process.env.FILE_STEPS_DELAY_MS ?? "0")
/** Milliseconds an interrupted train takes to stop, as a step with much to flush would: a test can signal during the cleanup. */
const stopDelayMs = Number(process.env.FILE_STEPS_SLOW_STOP_MS ?? "0")

export const fileSteps: StepHandlers<never> = {
  "train-clip": (ctx) => writeAtomic(join(ctx.workDir, "clip.txt"), digest(`clip/${JSON.stringify(ctx.step.config)}`)),
  "init-model": (ctx) => writeAtomic(join(ctx.workDir, "weights.txt"), digest(`init/${JSON.stringify(ctx.step.config.base)}`)),
  "merge-model": (ctx) =>
    Effect.gen(function*() {
      const model = yield* read(join(ctx.input("model").dir, "model.json"))
      yield* writeAtomic(join(ctx.workDir, "weights.txt"), digest(`merged/${model}`))
    }),
  "prepare-data": (ctx) =>
    Effect.gen(function*() {
      const text = JSON.stringify(ctx.step.config.dataset)
      for (let i = 0; i < 3; i++) {
        yield* writeAtomic(join(ctx.workDir, `sample-${i}.txt`), `${digest(`${text}/${i}`)}\n`)
        yield* ctx.progress(i + 1, 3, "files")
      }
    }),
  "encode-latents": (ctx) =>
    Effect.gen(function*() {
      const data = ctx.input("data").dir
      const files = (yield* Effect.promise(() => readdir(data))).filter((f) => f.startsWith("sample-")).sort()
      const parts = yield* Effect.forEach(files, (f) => read(join(data, f)))
      yield* writeAtomic(join(ctx.workDir, "latents.txt"), digest(`latents/${parts.join("")}`))
    }),
  "encode-text": (ctx) => writeAtomic(join(ctx.workDir, "text.txt"), digest(`text/${ctx.step.key}`)),
  train: (ctx) =>
    Effect.gen(function*() {
      const { checkpointEvery, seed, steps } = ctx.step.config.train
      if (process.env.FILE_STEPS_FAIL_TRAIN === ctx.step.id) {
        return yield* Effect.fail(new StepFailed({ step: ctx.step.id, reason: "failing on purpose (FILE_STEPS_FAIL_TRAIN)" }))
      }
      const checkpoint = join(ctx.workDir, latestCheckpointFile)
      yield* Effect.promise(() => mkdir(dirname(checkpoint), { recursive: true }))
      // No checkpoint yet (fresh start, or killed before the first one): start from the seed.
      let state = yield* read(checkpoint).pipe(
        Effect.map((t) => JSON.parse(t) as TrainState),
        Effect.orElseSucceed((): TrainState => ({ step: 0, rng: seed + 1, weights: [0, 0, 0, 0] }))
      )
      if (state.step > 0) yield* ctx.log(`resuming at iteration ${state.step}`)
      while (state.step < steps) {
        const rng = nextRandom(state.rng)
        const weights = state.weights.map((w, i) => w * 0.9 + ((rng >>> (i * 8)) & 0xff) / 255)
        state = { step: state.step + 1, rng, weights }
        if (state.step % checkpointEvery === 0 || state.step === steps) {
          yield* writeAtomic(checkpoint, JSON.stringify(state))
        }
        yield* ctx.progress(state.step, steps, "steps")
        if (iterationDelayMs > 0) yield* Effect.sleep(iterationDelayMs)
      }
      yield* writeAtomic(join(ctx.workDir, "model.json"), JSON.stringify(state.weights))
    }).pipe(Effect.onInterrupt(() => Effect.sleep(stopDelayMs))),
  generate: (ctx) =>
    Effect.gen(function*() {
      const model = ctx.inputs("model")
      const weights = model.length === 0 ? "base" : yield* read(join(model[0]!.dir, "model.json"))
      yield* writeAtomic(join(ctx.workDir, "samples.txt"), digest(`${weights}/${JSON.stringify(ctx.step.config.generate)}`))
    }),
  evaluate: (ctx) =>
    Effect.gen(function*() {
      const samples = yield* read(join(ctx.input("samples").dir, "samples.txt"))
      const reference = yield* read(join(ctx.input("reference").dir, "sample-0.txt"))
      yield* writeAtomic(join(ctx.workDir, "metrics.json"), JSON.stringify({ score: digest(samples + reference).slice(0, 8) }))
    }),
  report: (ctx) =>
    Effect.gen(function*() {
      // One `evaluation:<experiment or replicate>` input per evaluated run (reportRole).
      const evaluations = ctx.step.inputs.filter((i) => i.role.startsWith("evaluation:")).map((i) => ctx.input(i.role))
      const rows = yield* Effect.forEach(evaluations, (e) => read(join(e.dir, "metrics.json")).pipe(Effect.map((m) => `${e.step.experiments.join(",")} ${m}`)))
      yield* writeAtomic(join(ctx.workDir, "report.txt"), `${rows.join("\n")}\n`)
    })
}

export const fileStepsLayer = Layer.succeed(StepImplementations, { handlers: fileSteps, backend: () => Effect.succeed(undefined) })
