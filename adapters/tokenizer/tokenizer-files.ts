import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Schema } from "effect"
import { join } from "node:path"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
import { END_OF_WORD } from "./byte-level-bpe.ts"
import { makeClipTokenizer, type AddedToken, type ClipTokenizer } from "./clip-tokenizer.ts"

/** A tokenizer folder that cannot be used; names the file and what is wrong with it. */
export class TokenizerError extends Schema.TaggedError<TokenizerError>()("TokenizerError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/** Thrown while parsing and turned into a TokenizerError by `loadClipTokenizer`. */
class Problem extends Error {
  constructor(readonly file: string, reason: string) {
    super(reason)
  }
}

/** CLIPTokenizer's defaults, used when the folder's config does not name a special token. */
const DEFAULTS = { bos_token: "<|startoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>", pad_token: "<|endoftext|>" }
type SpecialRole = keyof typeof DEFAULTS

/** Lengths above this mean "unlimited" in transformers configs; CLIP's text model takes 77 positions. */
const UNLIMITED = 1_000_000
const CLIP_CONTEXT = 77

const asTokenizerError = (folder: string) => (error: unknown): TokenizerError =>
  error instanceof Problem
    ? new TokenizerError({ file: error.file, reason: error.message })
    : new TokenizerError({ file: folder, reason: error instanceof Error ? error.message : String(error) })

/** Parsing that throws a Problem naming the file, as an Effect. */
const parsing = <A>(folder: string, parse: () => A): Effect.Effect<A, TokenizerError> => Effect.try({ try: parse, catch: asTokenizerError(folder) })

const readText = (fs: FileSystem.FileSystem, file: string): Effect.Effect<string, TokenizerError> =>
  fs.readFileString(file).pipe(Effect.mapError((error) => new TokenizerError({ file, reason: fileProblem(error) })))

const jsonObject = (file: string, text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object")
    return value as Record<string, unknown>
  } catch (error) {
    throw new Problem(file, `not valid JSON (${(error as Error).message})`)
  }
}

const readJson = (fs: FileSystem.FileSystem, file: string): Effect.Effect<Record<string, unknown>, TokenizerError> =>
  Effect.flatMap(readText(fs, file), (text) => parsing(file, () => jsonObject(file, text)))

/** An optional file of the folder: undefined when absent; any other failure to read it is named. */
const readOptionalJson = (fs: FileSystem.FileSystem, file: string): Effect.Effect<Record<string, unknown> | undefined, TokenizerError> =>
  fs.readFileString(file).pipe(
    Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
    Effect.mapError((error) => new TokenizerError({ file, reason: fileProblem(error) })),
    Effect.flatMap((text) => text === undefined ? Effect.succeed(undefined) : parsing(file, () => jsonObject(file, text)))
  )

/** A special token in a config: a string or an AddedToken object `{content, ...}`. */
const tokenContent = (file: string, key: string, value: unknown): string | undefined => {
  if (value === undefined || value === null) return undefined
  if (typeof value === "string") return value
  if (typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content
  throw new Problem(file, `${key} must be a string or {"content": ...}`)
}

const vocabulary = (file: string, value: unknown): Map<string, number> => {
  if (typeof value !== "object" || value === null) throw new Problem(file, "the vocabulary is not an object of token -> id")
  const vocab = new Map<string, number>()
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new Problem(file, `token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, not a non-negative integer`)
    }
    vocab.set(token, id as number)
  }
  return vocab
}

const mergePair = (file: string, entry: unknown, line: number): readonly [string, string] => {
  const parts = typeof entry === "string" ? entry.split(" ") : entry
  if (!Array.isArray(parts) || parts.length !== 2 || !parts.every((p) => typeof p === "string" && p.length > 0)) {
    throw new Problem(file, `merge ${line} is ${JSON.stringify(entry)}, not two symbols`)
  }
  return [parts[0], parts[1]]
}

/** Added tokens with options the CLIP pipelines never use are refused rather than matched differently. */
const addedToken = (file: string, id: number, entry: Record<string, unknown>): AddedToken => {
  const content = entry.content
  if (typeof content !== "string" || content.length === 0) throw new Problem(file, `added token ${id} has no content`)
  for (const option of ["lstrip", "rstrip", "single_word"]) {
    if (entry[option] === true) throw new Problem(file, `added token ${JSON.stringify(content)} sets ${option}, which sardine does not support`)
  }
  const special = entry.special === true
  return { id, content, special, normalized: typeof entry.normalized === "boolean" ? entry.normalized : !special }
}

const fromTokenizerJson = (file: string, json: Record<string, unknown>) => {
  const model = json.model as Record<string, unknown> | undefined
  if (model?.type !== "BPE" || model.end_of_word_suffix !== END_OF_WORD) {
    throw new Problem(file, `model is not a CLIP byte-level BPE (type BPE with end_of_word_suffix "${END_OF_WORD}")`)
  }
  if (!Array.isArray(model.merges)) throw new Problem(file, "model.merges is not a list")
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : []
  return {
    vocab: vocabulary(file, model.vocab),
    merges: model.merges.map((m, i) => mergePair(file, m, i + 1)),
    addedTokens: added.map((t: Record<string, unknown>) => {
      if (!Number.isSafeInteger(t.id)) throw new Problem(file, `added token ${JSON.stringify(t.content)} has no integer id`)
      return addedToken(file, t.id as number, t)
    })
  }
}

const fromClassicFiles = (fs: FileSystem.FileSystem, folder: string, config: Record<string, unknown> | undefined) =>
  Effect.gen(function*() {
    const vocabFile = join(folder, "vocab.json")
    const mergesFile = join(folder, "merges.txt")
    const vocabJson = yield* readJson(fs, vocabFile)
    const vocab = yield* parsing(folder, () => vocabulary(vocabFile, vocabJson))
    const mergesText = yield* readText(fs, mergesFile)
    const merges = yield* parsing(folder, () =>
      mergesText
        .split("\n")
        .map((line, i) => ({ line: line.replace(/\r$/, ""), number: i + 1 }))
        .filter(({ line }) => line.length > 0 && !line.startsWith("#version"))
        .map(({ line, number }) => mergePair(mergesFile, line, number)))
    const addedTokens: Array<AddedToken> = []
    const decoderFile = join(folder, "tokenizer_config.json")
    const decoder = config?.added_tokens_decoder
    yield* parsing(folder, () => {
      if (decoder === undefined) return
      if (typeof decoder !== "object" || decoder === null) throw new Problem(decoderFile, "added_tokens_decoder is not an object")
      for (const [id, entry] of Object.entries(decoder)) addedTokens.push(addedToken(decoderFile, Number(id), entry as Record<string, unknown>))
    })
    const addedFile = join(folder, "added_tokens.json")
    const legacy = yield* readOptionalJson(fs, addedFile)
    yield* parsing(folder, () => {
      for (const [content, id] of Object.entries(legacy ?? {})) {
        if (!Number.isSafeInteger(id)) throw new Problem(addedFile, `token ${JSON.stringify(content)} has no integer id`)
        if (!addedTokens.some((t) => t.content === content)) addedTokens.push({ id: id as number, content, normalized: true, special: false })
      }
    })
    return { vocab, merges, addedTokens }
  })

/**
 * Loads the CLIP tokenizer of a diffusers `tokenizer/` folder: `tokenizer.json` when present (what
 * transformers 5 writes), otherwise `vocab.json` + `merges.txt` with `added_tokens.json` and the
 * `added_tokens_decoder` of `tokenizer_config.json`. Special tokens come from `special_tokens_map.json`
 * over `tokenizer_config.json` over CLIPTokenizer's defaults.
 */
export const loadClipTokenizer = (folder: string): Effect.Effect<ClipTokenizer, TokenizerError> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const configFile = join(folder, "tokenizer_config.json")
    const config = yield* readOptionalJson(fs, configFile)
    const mapFile = join(folder, "special_tokens_map.json")
    const map = yield* readOptionalJson(fs, mapFile)
    const tokenizerJson = join(folder, "tokenizer.json")
    const hasTokenizerJson = yield* fs.exists(tokenizerJson).pipe(
      Effect.mapError((error) => new TokenizerError({ file: tokenizerJson, reason: fileProblem(error) }))
    )
    const parts = hasTokenizerJson
      ? yield* Effect.flatMap(readJson(fs, tokenizerJson), (json) => parsing(folder, () => fromTokenizerJson(tokenizerJson, json)))
      : yield* fromClassicFiles(fs, folder, config)
    return yield* parsing(folder, () => {
      const special = (role: SpecialRole) => tokenContent(mapFile, role, map?.[role]) ?? tokenContent(configFile, role, config?.[role]) ?? DEFAULTS[role]
      const declared = config?.model_max_length
      if (declared !== undefined && (typeof declared !== "number" || !(declared > 2))) {
        throw new Problem(configFile, `model_max_length ${JSON.stringify(declared)} is not a length above 2`)
      }
      const modelMaxLength = declared === undefined || declared > UNLIMITED ? CLIP_CONTEXT : declared
      try {
        return makeClipTokenizer({
          ...parts,
          bosToken: special("bos_token"),
          eosToken: special("eos_token"),
          padToken: special("pad_token"),
          unkToken: special("unk_token"),
          modelMaxLength
        })
      } catch (error) {
        throw new Problem(folder, (error as Error).message)
      }
    })
  }).pipe(Effect.provide(NodeFileSystem.layer))
