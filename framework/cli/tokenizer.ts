import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Chunk, Console, Effect, Option, Schema, Stream } from "effect"
import { resolve } from "node:path"
import { synthetic } from "../declaration/dataset.ts"
import { Datasets } from "../services/datasets.ts"
import { TokenizerTrainer, type TrainedTokenizer } from "../services/tokenizer-trainer.ts"

/**
 * `sardine tokenizer train --vocab-size N --out DIR [--captions FILE]… [--synthetic N [--seed S] [--size P]]
 * [--words w,w,…] [--max-length L]`: learns a CLIP byte-level BPE tokenizer from captions — caption
 * files (.txt one per line, or .jsonl with a "text" field such as an imagefolder's metadata.jsonl)
 * and/or the synthetic generator's captions in both modalities ("SAR image of …", "optical image of …").
 */

export class CaptionFileError extends Schema.TaggedError<CaptionFileError>()("CaptionFileError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

const usage = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

/** The captions of a .txt (one per non-empty line) or .jsonl (the "text" field of each line) file. */
export const captionsOfFile = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => new CaptionFileError({ file, reason: e.message })))
    const lines = text.split("\n").map((line, i) => ({ line: line.replace(/\r$/, "").trim(), number: i + 1 })).filter((l) => l.line.length > 0)
    if (!file.endsWith(".jsonl")) return lines.map((l) => l.line)
    return yield* Effect.forEach(lines, ({ line, number }) => {
      try {
        const value = JSON.parse(line) as { text?: unknown }
        if (typeof value?.text === "string") return Effect.succeed(value.text)
      } catch {
        return Effect.fail(new CaptionFileError({ file, reason: `line ${number} is not JSON` }))
      }
      return Effect.fail(new CaptionFileError({ file, reason: `line ${number} has no "text" string` }))
    })
  })

/** The captions of synthetic scenes 0…n−1, once with each modality's default template. */
const syntheticCaptions = (n: number, seed: number, size: number) =>
  Effect.gen(function*() {
    const datasets = yield* Datasets
    const captions: Array<string> = []
    for (const modality of ["sar", "optical"] as const) {
      const items = yield* Stream.runCollect(datasets.samples(synthetic({ n, seed, size, modality })))
      for (const item of Chunk.toReadonlyArray(items)) if (item._tag === "Sample") captions.push(item.sample.caption)
    }
    return captions
  })

export const summaryText = (t: TrainedTokenizer) =>
  [
    `wrote ${t.folder}`,
    `  vocabulary ${t.vocabSize} ids (${t.merges} merges learned from ${t.words} distinct words of ${t.captions} captions)`,
    `  longest caption ${t.longestCaption} tokens with start and end${
      t.truncated > 0 ? `; ${t.truncated} captions exceed --max-length and would be truncated` : ""
    }`
  ].join("\n")

const trainCommand = Command.make(
  "train",
  {
    captions: Options.file("captions", { exists: "yes" }).pipe(
      Options.repeated,
      Options.withDescription("A caption file: .txt (one caption per line) or .jsonl (a \"text\" field per line, e.g. metadata.jsonl); repeatable")
    ),
    synthetic: Options.integer("synthetic").pipe(
      Options.optional,
      Options.withDescription("Also learn from the captions of this many synthetic scenes, in both modalities (SAR and optical templates)")
    ),
    seed: Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("Seed of the synthetic scenes")),
    size: Options.integer("size").pipe(
      Options.withDefault(32),
      Options.withDescription("Side of the synthetic scenes in pixels (their captions count what fits)")
    ),
    vocabSize: Options.integer("vocab-size").pipe(
      Options.withDescription("Ids in the vocabulary: 512 byte symbols + merges + 2 special tokens; training stops early when every word is one token")
    ),
    words: Options.text("words").pipe(
      Options.optional,
      Options.withDescription("Comma-separated words that must each become one token (class names, prompt words)")
    ),
    maxLength: Options.integer("max-length").pipe(
      Options.withDefault(77),
      Options.withDescription("model_max_length: tokens per prompt, start and end included")
    ),
    out: Options.text("out").pipe(Options.map((p) => resolve(p)), Options.withDescription("The tokenizer folder to create (must not exist)"))
  },
  ({ captions, maxLength, out, seed, size, synthetic: scenes, vocabSize, words }) =>
    Effect.gen(function*() {
      if (captions.length === 0 && Option.isNone(scenes)) {
        return yield* Effect.fail(usage("give --captions FILE and/or --synthetic N: there is nothing to learn from"))
      }
      const fromFiles = yield* Effect.forEach(captions, captionsOfFile)
      const fromScenes = Option.isSome(scenes) ? yield* syntheticCaptions(scenes.value, seed, size) : []
      const trainer = yield* TokenizerTrainer
      const trained = yield* trainer.train({
        captions: [...fromFiles.flat(), ...fromScenes],
        vocabSize,
        requiredWords: Option.match(words, { onNone: () => [], onSome: (w) => w.split(",").map((s) => s.trim()).filter((s) => s.length > 0) }),
        modelMaxLength: maxLength,
        out
      })
      yield* Console.log(summaryText(trained))
    })
).pipe(Command.withDescription("Learn a CLIP byte-level BPE tokenizer (vocab.json + merges.txt) from captions; deterministic for the same captions."))

export const tokenizerCommand = Command.make("tokenizer").pipe(
  Command.withDescription("Make tokenizers for models trained from scratch."),
  Command.withSubcommands([trainCommand])
)
