import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { TokenizerTrainer, TokenizerTrainingError, type TokenizerTrainingRequest, type TrainedTokenizer } from "../../framework/services/tokenizer-trainer.ts"
import { END_OF_TEXT, mergesText, START_OF_TEXT, trainBpe, VocabularyTooSmall } from "./bpe-trainer.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { writeFolderAtomically } from "../files/atomic-write-node.ts"
import { loadClipTokenizer } from "./tokenizer-files.ts"

/**
 * The TokenizerTrainer service: learns the merges (bpe-trainer.ts), writes the folder a diffusers
 * pipeline's `tokenizer/` holds (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json)
 * under a temporary name, loads it back with sardine's CLIP tokenizer, and only then renames it.
 */

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`

const specials = { bos_token: START_OF_TEXT, eos_token: END_OF_TEXT, unk_token: END_OF_TEXT, pad_token: END_OF_TEXT }

const train = (fs: FileSystem.FileSystem) => (request: TokenizerTrainingRequest): Effect.Effect<TrainedTokenizer, TokenizerTrainingError> =>
  Effect.gen(function*() {
    const { out } = request
    const failure = (reason: string) => new TokenizerTrainingError({ path: out, reason })
    const taken = yield* fs.exists(out).pipe(Effect.mapError((error) => failure(`cannot tell whether it exists: ${fileProblem(error)}`)))
    if (taken) return yield* failure("already exists; choose a new --out folder")
    if (request.captions.length === 0) return yield* failure("no captions to learn from")
    if (!(request.modelMaxLength > 2)) return yield* failure(`the sequence length ${request.modelMaxLength} leaves no room between the start and end tokens`)
    const trained = yield* Effect.try({
      try: () => trainBpe(request.captions, { vocabSize: request.vocabSize, requiredWords: request.requiredWords }),
      catch: (e) => failure(e instanceof VocabularyTooSmall ? e.message : `training failed: ${(e as Error).message}`)
    })
    return yield* writeFolderAtomically(out, (temporary) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* Effect.all([
          fs.writeFileString(join(temporary, "vocab.json"), `${JSON.stringify(Object.fromEntries(trained.vocab))}\n`),
          fs.writeFileString(join(temporary, "merges.txt"), mergesText(trained.merges)),
          fs.writeFileString(join(temporary, "special_tokens_map.json"), json(specials)),
          fs.writeFileString(
            join(temporary, "tokenizer_config.json"),
            json({ ...specials, model_max_length: request.modelMaxLength, do_lower_case: true, tokenizer_class: "CLIPTokenizer" })
          )
        ]).pipe(Effect.mapError((e) => failure(`cannot write the tokenizer files: ${e.message}`)))
        const tokenizer = yield* loadClipTokenizer(temporary).pipe(Effect.mapError((e) => failure(`the written tokenizer does not load: ${e.message}`)))
        const lengths = request.captions.map((c) => tokenizer.tokenIds(c).length + 2)
        return {
          folder: out,
          vocabSize: trained.vocab.size,
          merges: trained.merges.length,
          words: trained.words,
          captions: request.captions.length,
          longestCaption: Math.max(...lengths),
          truncated: lengths.filter((n) => n > request.modelMaxLength).length
        }
      })).pipe(
        Effect.mapError((e) => e._tag === "TokenizerTrainingError" ? e : failure(`cannot move the tokenizer into place: ${e.message}`))
      )
  })

/** On Node's filesystem: the service's operations require nothing, so the layer provides it. */
export const TokenizerTrainerLive = Layer.effect(TokenizerTrainer, Effect.map(FileSystem.FileSystem, (fs) => ({ train: train(fs) }))).pipe(
  Layer.provide(NodeFileSystem.layer)
)
