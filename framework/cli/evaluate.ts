import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Console, Effect, Option, ParseResult, Schema } from "effect"
import { createHash, randomUUID } from "node:crypto"
import { tmpdir } from "node:os"
import { basename, join, resolve } from "node:path"
import { Dataset } from "../declaration/dataset.ts"
import { moveIntoPlace, temporaryNameFor } from "../files/atomic-write.ts"
import { statIfPresent } from "../files/if-present.ts"
import { Evaluation } from "../declaration/evaluation.ts"
import { EVALUATION_METRICS } from "../metrics/metric-catalog.ts"
import { Progress } from "../runner/progress.ts"
import { SarUnit } from "../sar/units.ts"
import { Datasets, type TrainingSample } from "../services/datasets.ts"
import { type GeneratedSample, samplesIndexFile } from "../services/engine.ts"
import { ImageIO } from "../services/image-io.ts"
import { amplitudeOfPrepared } from "../steps/evaluate.ts"
import { evaluateImages, type GeneratedSource } from "../steps/evaluate-images.ts"
import { evaluationFile, type EvaluationResult } from "../steps/evaluation-result.ts"
import { bandOption, jsonOption } from "./metric-options.ts"

/**
 * `sardine evaluate <images> --reference <images>`: the evaluate step's metrics and intervals
 * (steps/evaluate-images.ts, the same code) on any folder of images — another tool's samples, a
 * colleague's folder — against any folder of real images, both read as a dataset declares them
 * (unit, normalisation, band, size). A folder `sardine generate` wrote (samples.json) is read as
 * the evaluate step reads it. Writes evaluation.json (and evidence.json, previews/) into --out,
 * through a temporary folder renamed when complete; `sardine report --add name=DIR` puts it in a
 * study's comparison report.
 */

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** A file operation of `sardine evaluate` that failed (PlatformError's message names the path). */
export class EvaluateFailed extends Schema.TaggedError<EvaluateFailed>()("EvaluateFailed", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

const failedOn = (e: PlatformError) => new EvaluateFailed({ reason: e.message })

const readText = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(Effect.mapError(failedOn))

const exists = (path: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.exists(path)).pipe(Effect.mapError(failedOn))

/** Declaration field → the option that sets it, for error messages. */
const optionOf: Record<string, string> = {
  "reference.unit": "--unit",
  "reference.band": "--band",
  "reference.normalisation": "--normalisation",
  "reference.resolution": "--size",
  "amplitude.domain": "--domain",
  "amplitude.floorDb": "--floor-db",
  "amplitude.bins": "--bins",
  "texture.levels": "--levels",
  "texture.distances": "--distances",
  "texture.angles": "--angles",
  "alignment.clip": "--clip",
  "alignment.promptFollowing": "--judge",
  "uncertainty.level": "--level",
  "uncertainty.resamples": "--resamples",
  "uncertainty.seed": "--seed"
}

const numbers = (text: string) => text.split(",").map((s) => (s.trim() === "" ? NaN : Number(s.trim())))

/**
 * `--normalisation` as a dataset declares it: `mean-std` (per image, k = 3), `mean-std:k=2,statistics=dataset`,
 * `mean-std:mean=0.2,std=0.1`, `db-window:min=-25,max=5`, `percentile:low=1,high=99`.
 */
export const parseNormalisation = (text: string): Record<string, unknown> | string => {
  const [tag, fields = ""] = text.split(/:(.*)/s, 2)
  const out: Record<string, unknown> = { _tag: tag }
  const statistics: Record<string, number> = {}
  for (const field of fields.split(",").map((f) => f.trim()).filter((f) => f !== "")) {
    const [key = "", value] = field.split("=", 2)
    if (value === undefined) return `--normalisation: "${field}" is not KEY=VALUE (e.g. ${tag}:k=3)`
    if (key === "statistics") out.statistics = value
    else if (tag === "mean-std" && (key === "mean" || key === "std")) statistics[key] = Number(value)
    else out[key] = Number(value)
  }
  if (Object.keys(statistics).length > 0) out.statistics = statistics
  return out
}

const args = {
  images: Args.directory({ name: "images", exists: "yes" }).pipe(
    Args.withDescription(
      "The images to judge: a folder `sardine generate` wrote (samples.json), or any folder of images (PNG, JPEG, TIFF; metadata.jsonl optional)"
    )
  ),
  reference: Options.directory("reference", { exists: "yes" }).pipe(
    Options.withDescription("The real images to compare with: a folder of images, read as an imagefolder dataset (metadata.jsonl optional)")
  ),
  clip: Options.directory("clip", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription(
      "A CLIP exported to ONNX (image.onnx, text.onnx, vocab.json, merges.txt): FID/KID/CMMD on its features, and prompt alignment when prompts are known"
    )
  ),
  judge: Options.directory("judge", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription(
      "A second CLIP folder that judges prompt following alone (gap, top-1 / top-k retrieval); the absolute alignment stays --clip's, which it needs"
    )
  ),
  prompts: Options.file("prompts", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription(
      "Each image's prompt: a samples.json (sardine generate) or a metadata.jsonl (file_name, text). Default: the folder's own samples.json or metadata.jsonl"
    )
  ),
  unit: Options.choice("unit", SarUnit.literals).pipe(
    Options.optional,
    Options.withDescription("What plain images' pixel values are, as a dataset's unit (default amplitude); a samples.json folder holds normalised amplitude")
  ),
  normalisation: Options.text("normalisation").pipe(
    Options.optional,
    Options.withDescription(
      "Plain images' normalisation to [0, 1], as a dataset's (default mean-std, k = 3, per image): mean-std[:k=K][,statistics=dataset|mean=M,std=S], db-window:min=MIN,max=MAX, percentile:low=P,high=P"
    )
  ),
  band: bandOption,
  size: Options.integer("size").pipe(
    Options.optional,
    Options.withDescription("Side of the centre crop taken from each plain image, as a dataset's resolution (default: the smallest side in the folder)")
  ),
  domain: Options.choice("domain", ["amplitude", "db"]).pipe(
    Options.optional,
    Options.withDescription("Amplitude distances on v or on 20·log10(v) (default amplitude)")
  ),
  floorDb: Options.float("floor-db").pipe(Options.optional, Options.withDescription("dB floor of the db domain (default -60)")),
  bins: Options.integer("bins").pipe(Options.optional, Options.withDescription("Histogram bins of KL / JS / Hellinger / Bhattacharyya (default 256)")),
  levels: Options.integer("levels").pipe(Options.optional, Options.withDescription("GLCM grey levels (default 32)")),
  distances: Options.text("distances").pipe(Options.optional, Options.withDescription("GLCM pixel distances, comma-separated (default 1)")),
  angles: Options.text("angles").pipe(Options.optional, Options.withDescription("GLCM angles in degrees, comma-separated (default 0,45,90,135)")),
  level: Options.float("level").pipe(Options.optional, Options.withDescription("Confidence level of the intervals (default 0.95)")),
  resamples: Options.integer("resamples").pipe(Options.optional, Options.withDescription("Bootstrap resamples per interval (default 2000)")),
  seed: Options.integer("seed").pipe(Options.optional, Options.withDescription("Seed of the bootstrap (default 0)")),
  out: Options.text("out").pipe(
    Options.map((path) => resolve(path)),
    Options.optional,
    Options.withDescription("Write evaluation.json, evidence.json and previews/ here (must not exist, or be empty); without it, only print")
  ),
  json: jsonOption
}

type Parsed = {
  readonly [K in keyof typeof args]: (typeof args)[K] extends Args.Args<infer A> ? A : (typeof args)[K] extends Options.Options<infer A> ? A : never
}

const some = <K extends string, A>(key: K, option: Option.Option<A>) => Option.match(option, { onNone: () => ({}), onSome: (value) => ({ [key]: value }) })

/** The folder's plain images read as an imagefolder dataset declares them. */
const folderDataset = (path: string, parsed: Parsed, normalisation: unknown, size: number) => ({
  _tag: "image-folder",
  path,
  unit: Option.getOrElse(parsed.unit, () => "amplitude"),
  ...some("band", parsed.band),
  ...(normalisation === undefined ? {} : { normalisation }),
  resolution: { size }
})

/** The options as the evaluate step's declaration, decoded by its schema (so defaults and rules are the step's). */
const declarationOf = (parsed: Parsed, size: number) =>
  Effect.gen(function*() {
    const normalisation = Option.map(parsed.normalisation, parseNormalisation)
    if (Option.isSome(normalisation) && typeof normalisation.value === "string") return yield* invalid(normalisation.value)
    // A judge without the alignment CLIP would be read and ignored.
    if (Option.isSome(parsed.judge) && Option.isNone(parsed.clip)) return yield* invalid("--judge: judges prompt following beside --clip; give --clip too")
    const input = {
      reference: folderDataset(parsed.reference, parsed, Option.getOrUndefined(normalisation), size),
      amplitude: { ...some("domain", parsed.domain), ...some("floorDb", parsed.floorDb), ...some("bins", parsed.bins) },
      texture: {
        ...some("levels", parsed.levels),
        ...some("distances", Option.map(parsed.distances, numbers)),
        ...some("angles", Option.map(parsed.angles, numbers))
      },
      ...Option.match(parsed.clip, {
        onNone: () => ({}),
        onSome: (clip) => ({
          alignment: {
            clip: resolve(clip),
            ...Option.match(parsed.judge, { onNone: () => ({}), onSome: (judge) => ({ promptFollowing: { clip: resolve(judge) } }) })
          }
        })
      }),
      uncertainty: { ...some("level", parsed.level), ...some("resamples", parsed.resamples), ...some("seed", parsed.seed) }
    }
    return yield* Schema.decodeUnknown(Evaluation)(input, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.catchAll((error) =>
        invalid(
          ParseResult.ArrayFormatter.formatErrorSync(error)
            .map((issue) => {
              const path = issue.path.map(String)
              const option = optionOf[path.slice(0, 2).join(".")] ?? path.join(".")
              return `${option}${path.length > 2 && option !== "--size" ? ` (${path.slice(2).join(".")})` : ""}: ${issue.message}`
            })
            .join("\n")
        )
      )
    )
  })

/** A prompt file's prompts by image file name: samples.json (tiff and png) or metadata.jsonl (file_name, text). */
const readPromptFile = (file: string) =>
  Effect.gen(function*() {
    const text = yield* readText(file)
    const prompts = new Map<string, string>()
    if (basename(file).endsWith(".json")) {
      const samples = yield* Effect.try(() => JSON.parse(text) as ReadonlyArray<GeneratedSample>).pipe(
        Effect.orElse(() => invalid(`--prompts: ${file} is not JSON`))
      )
      if (!Array.isArray(samples)) return yield* invalid(`--prompts: ${file} is not a samples.json (a JSON array of samples)`)
      for (const [i, s] of samples.entries()) {
        if (typeof s?.prompt !== "string" || typeof s.tiff !== "string") {
          return yield* invalid(`--prompts: ${file}: sample ${i} has no prompt and tiff (not a sardine samples.json)`)
        }
        for (const name of [s.tiff, s.png]) if (typeof name === "string") prompts.set(name, s.prompt)
      }
      return prompts
    }
    for (const [i, line] of text.split("\n").entries()) {
      if (line.trim() === "") continue
      const entry = yield* Effect.try(() => JSON.parse(line) as { file_name?: unknown; text?: unknown }).pipe(
        Effect.orElse(() => invalid(`--prompts: ${file} line ${i + 1} is not JSON`))
      )
      if (typeof entry?.file_name !== "string" || typeof entry.text !== "string") {
        return yield* invalid(`--prompts: ${file} line ${i + 1} needs "file_name" and "text" strings`)
      }
      prompts.set(entry.file_name, entry.text)
    }
    return prompts
  })

/** The smallest image side of a folder, as `sardine data inspect` finds its sizes. */
const smallestSide = (folder: string) =>
  Effect.gen(function*() {
    const report = yield* (yield* Datasets).inspect(folder)
    const sides = Object.keys(report.sizes).flatMap((size) => size.split("×").map(Number))
    if (sides.length === 0) {
      const first = report.problems[0]
      return yield* invalid(`${folder}: no readable image${first === undefined ? "" : ` (${first.file}: ${first.reason})`}`)
    }
    return Math.min(...sides)
  })

/** Training samples of a folder (pixels in [-1, 1]), in the dataset's order; a bad file fails, named. */
const folderSamples = (dataset: ReturnType<typeof folderDataset>) =>
  Effect.gen(function*() {
    const datasets = yield* Datasets
    const declared = yield* Schema.decodeUnknown(Dataset)(dataset).pipe(Effect.catchAll((error) => invalid(error.message)))
    return (yield* datasets.load(declared)).samples
  })

/** Each image's prompt from a prompt file (none without one); images it does not name are a usage error. */
const withPrompts = (names: ReadonlyArray<string>, prompts: ReadonlyMap<string, string> | undefined, from: string) =>
  Effect.gen(function*() {
    if (prompts === undefined) return names.map(() => undefined)
    const missing = names.filter((n) => !prompts.has(n))
    if (missing.length > 0) {
      return yield* invalid(
        `--prompts: ${from} has no prompt for ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` and ${missing.length - 3} more` : ""}`
      )
    }
    return names.map((n) => prompts.get(n)!)
  })

/** The generated images: a samples.json folder as the evaluate step reads it, otherwise as a dataset. */
const generatedSources = (parsed: Parsed, dataset: ReturnType<typeof folderDataset>) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const dir = resolve(parsed.images)
    const index = join(dir, samplesIndexFile)
    const promptFile = Option.getOrUndefined(parsed.prompts)
    const promptsOf = promptFile === undefined ? Effect.succeed(undefined) : readPromptFile(promptFile)
    if (yield* exists(index)) {
      const text = yield* readText(index)
      const records = yield* Effect.try(() => JSON.parse(text) as ReadonlyArray<GeneratedSample>).pipe(
        Effect.orElse(() => invalid(`${index}: not a samples.json`))
      )
      const given = yield* promptsOf
      const prompts = yield* withPrompts(records.map((s) => s.tiff), given, promptFile ?? "")
      return records.map((sample, i): GeneratedSource<unknown, never> => ({
        read: io.read(join(dir, sample.tiff)),
        name: join(dir, sample.tiff),
        promptIndex: sample.promptIndex,
        prompt: prompts[i] ?? sample.prompt,
        declaredPrompt: prompts[i] ?? sample.declaredPrompt,
        split: sample.split,
        seed: sample.seed,
        png: join(dir, sample.png)
      }))
    }
    const samples: ReadonlyArray<TrainingSample> = yield* folderSamples(dataset)
    const names = samples.map((s) => s.id)
    // Without --prompts, the folder's metadata.jsonl captions are the prompts when every image has one.
    const given = yield* promptsOf
    const prompts = given === undefined && samples.every((s) => s.caption !== "")
      ? samples.map((s) => s.caption)
      : yield* withPrompts(names, given, promptFile ?? "")
    const promptIndex = new Map<string, number>()
    return samples.map((sample, i): GeneratedSource<unknown, never> => {
      const prompt = prompts[i]
      if (prompt !== undefined && !promptIndex.has(prompt)) promptIndex.set(prompt, promptIndex.size)
      const image = amplitudeOfPrepared(sample, sample.pixels, sample.source)
      return {
        read: Effect.succeed({ width: image.width, height: image.height, channels: 1, data: image.data }),
        name: sample.source,
        // Without prompts each image is its own prompt group; each is its own noise draw.
        promptIndex: prompt === undefined ? i : promptIndex.get(prompt)!,
        ...(prompt === undefined ? {} : { prompt }),
        declaredPrompt: prompt ?? sample.id,
        split: "seen",
        seed: i
      }
    })
  })

const fmt = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : Number(x.toPrecision(4)).toString())

/** The metrics with their intervals, one per line. */
export const evaluationText = (result: EvaluationResult, out: string | undefined): string => {
  const lines = [
    `generated  ${result.generated.images} images`,
    `reference  ${result.reference.images} images`,
    `intervals  ${Math.round(result.uncertainty.level * 100)}%, ${result.uncertainty.resamples} bootstrap resamples of ${result.uncertainty.draws} noise draws`,
    ""
  ]
  const better = (m: (typeof EVALUATION_METRICS)[number]) => {
    if (m.direction !== "closer") return `${m.direction} is better`
    const real = result.reference.statistics[m.id.replace(/^statistics\./, "") as keyof EvaluationResult["reference"]["statistics"]]
    return `closer to the reference's ${fmt(real)} is better`
  }
  const rows = EVALUATION_METRICS.flatMap((m) => {
    const e = result.estimates[m.id]
    return e === undefined || !Number.isFinite(e.value)
      ? []
      : [{ label: m.label, value: fmt(e.value), interval: `[${fmt(e.low)}, ${fmt(e.high)}]`, better: better(m) }]
  })
  const width = (column: "label" | "value" | "interval") => Math.max(...rows.map((r) => r[column].length))
  for (const r of rows) {
    lines.push(`${r.label.padEnd(width("label"))}  ${r.value.padStart(width("value"))}  ${r.interval.padEnd(width("interval"))}  ${r.better}`)
  }
  for (const note of result.alignment?.notes ?? []) lines.push(`note: ${note}`)
  if (out !== undefined) lines.push("", `wrote ${join(out, evaluationFile)}`)
  return lines.join("\n")
}

export const evaluateCommand = Command.make("evaluate", args, (parsed) =>
  Effect.gen(function*() {
    const out = Option.getOrUndefined(parsed.out)
    const fs = yield* FileSystem.FileSystem
    const outInfo = out === undefined ? Option.none() : yield* statIfPresent(out).pipe(Effect.mapError(failedOn))
    if (out !== undefined && Option.isSome(outInfo)) {
      if (outInfo.value.type !== "Directory") return yield* invalid(`--out: ${out} exists and is not an empty folder`)
      if ((yield* fs.readDirectory(out).pipe(Effect.mapError(failedOn))).length > 0) return yield* invalid(`--out: ${out} exists and is not empty`)
    }
    if (resolve(parsed.images) === resolve(parsed.reference)) return yield* invalid("--reference: the same folder as the images")
    const plainImages = !(yield* exists(join(resolve(parsed.images), samplesIndexFile)))
    const size = Option.getOrUndefined(parsed.size)
    const referenceSize = size ?? (yield* smallestSide(parsed.reference))
    const declaration = yield* declarationOf(parsed, referenceSize)
    const { reference: _, ...options } = declaration
    // Both folders are read with the normalisation as decoded (defaults filled in).
    const normalisation = declaration.reference._tag === "image-folder" ? declaration.reference.normalisation : undefined
    const imagesSize = plainImages ? size ?? (yield* smallestSide(parsed.images)) : referenceSize
    const dataset = folderDataset(resolve(parsed.images), parsed, normalisation, imagesSize)
    const progress = yield* Progress
    const meter = yield* progress.begin("evaluate", `evaluate ${basename(resolve(parsed.images))}`)
    yield* meter.log(`reading ${resolve(parsed.images)}`)
    const generated = yield* generatedSources(parsed, dataset)
    yield* meter.log(`reading the reference ${resolve(parsed.reference)}`)
    const reference = yield* folderSamples(folderDataset(resolve(parsed.reference), parsed, normalisation, referenceSize))
    // Evaluations compare only against the same real images: the key is their content.
    const hash = createHash("sha256")
    for (const s of reference) hash.update(new Uint8Array(s.pixels.buffer, s.pixels.byteOffset, s.pixels.byteLength))
    const referenceKey = `images-${hash.digest("hex").slice(0, 32)}`
    // Written next to --out under a temporary name, renamed when complete; without --out, in a temporary folder removed at the end.
    const workDir = out === undefined ? join(tmpdir(), `sardine-evaluate-${randomUUID()}`) : temporaryNameFor(out)
    const result = yield* Effect.gen(function*() {
      yield* fs.makeDirectory(workDir, { recursive: true }).pipe(Effect.mapError(failedOn))
      const result = yield* evaluateImages({
        experiments: [basename(resolve(parsed.images))],
        generated,
        reference: reference.map((sample) => ({ read: Effect.succeed(amplitudeOfPrepared(sample, sample.pixels, sample.source)), caption: sample.caption })),
        referenceKey,
        options,
        resolveClip: (clip) => clip,
        lineage: { generate: `folder:${resolve(parsed.images)}`, reference: referenceKey },
        workDir,
        progress: meter.update,
        log: meter.log
      })
      if (out !== undefined) yield* moveIntoPlace(workDir, out, { replace: true }).pipe(Effect.mapError(failedOn))
      return result
    }).pipe(Effect.ensuring(fs.remove(workDir, { recursive: true, force: true }).pipe(Effect.ignore)))
    yield* progress.end("evaluate", "done")
    yield* Console.log(parsed.json ? JSON.stringify(result, null, 2) : evaluationText(result, out))
  })).pipe(
    Command.withDescription(
      "Judge any folder of images against a folder of real images with the evaluate step's metrics (amplitude distances, GLCM, FID/KID/CMMD on CLIP features, " +
        "CLIP alignment when prompts are known) and their intervals; --out writes evaluation.json for `sardine report --add`."
    )
  )
