import { FileSystem } from "@effect/platform"
import { resolve } from "node:path"
import { Effect, Stream } from "effect"
import { DatasetError, type FileProblem, type ShardReport } from "../../framework/services/datasets.ts"
import { defaultMaxPixels } from "../../framework/services/image-io.ts"
import { decodeMember, jsonField, MemberProblem, memberText } from "./webdataset-members.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { sniffFormat } from "../images/file-signature.ts"
import { readNpyHeader } from "./webdataset-npy.ts"
import { shardSamples } from "./webdataset-samples.ts"
import { listShards } from "./webdataset-shards.ts"

/*
 * `sardine data inspect` on WebDataset shards: every shard read once, sample by sample; for each member
 * extension its count, for image members (PNG, JPEG, TIFF, .npy) their types, sizes, bands and values,
 * for JSON members the paths of their text fields (what a `caption` source can name), and every problem.
 */

const imageExtension = /(^|\.)(png|jpe?g|tiff?|npy)$/
const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1
}

/** Dotted paths of the string values of a JSON value ("caption.MID"). */
const stringPaths = (value: unknown, prefix = ""): Array<string> => {
  if (typeof value === "string") return prefix === "" ? [] : [prefix]
  if (value === null || typeof value !== "object" || Array.isArray(value)) return []
  return Object.entries(value).flatMap(([key, v]) => stringPaths(v, prefix === "" ? key : `${prefix}.${key}`))
}

interface ImageTally {
  count: number
  types: Record<string, number>
  sizes: Record<string, number>
  bands: Record<string, number>
  min: number
  max: number
  sum: number
  values: number
  nonFinite: number
}

export const inspectShards = (
  patterns: ReadonlyArray<string>,
  options: { readonly root?: string; readonly caption?: string; readonly maxPixels?: number } = {}
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const root = resolve(options.root ?? process.cwd())
    const { files, unmatched } = yield* Effect.tryPromise({
      try: () => listShards(patterns, root),
      catch: (error) => new DatasetError({ path: root, reason: `cannot list the shards: ${(error as Error).message}` })
    })
    const [firstUnmatched] = unmatched
    if (firstUnmatched !== undefined) return yield* new DatasetError({ path: resolve(root, firstUnmatched), reason: "the shard pattern matches no file" })
    const members: Record<string, number> = {}
    const images: Record<string, ImageTally> = {}
    const jsonFields: Record<string, number> = {}
    const problems: Array<FileProblem> = []
    const shards: Array<{ file: string; bytes: number; samples: number }> = []
    let samples = 0
    let captioned = 0
    for (const file of files) {
      const info = yield* fs.stat(file).pipe(Effect.mapError((error) => new DatasetError({ path: file, reason: fileProblem(error) })))
      const shard = { file, bytes: Number(info.size), samples: 0 }
      shards.push(shard)
      yield* Stream.runForEach(Stream.orDie(Stream.fromAsyncIterable(shardSamples(file, () => true), (e) => e)), (item) =>
        Effect.gen(function*() {
          if (item._tag === "Problem") {
            problems.push(item.problem)
            return
          }
          shard.samples++
          samples++
          for (const [extension, member] of item.sample.members) {
            bump(members, extension)
            const name = `${file}:${member.name}`
            if (member.bytes === undefined) {
              problems.push({ file: name, kind: "too-large", reason: `member of ${member.size} bytes is not read` })
              continue
            }
            if (extension.endsWith("json")) {
              try {
                for (const path of stringPaths(JSON.parse(memberText(member.bytes)))) bump(jsonFields, `${extension}#${path}`)
              } catch (error) {
                problems.push({ file: name, kind: "corrupt", reason: `not valid JSON (${(error as Error).message})` })
              }
              continue
            }
            if (!imageExtension.test(extension)) continue
            const decoded = yield* Effect.either(Effect.tryPromise({
              try: () => decodeMember(member.name, member.bytes!, options.maxPixels ?? defaultMaxPixels),
              catch: (error) => error as MemberProblem
            }))
            if (decoded._tag === "Left") {
              problems.push({ file: name, kind: decoded.left.kind ?? "corrupt", reason: decoded.left.message })
              continue
            }
            const raster = decoded.right
            const tally = images[extension] ??= { count: 0, types: {}, sizes: {}, bands: {}, min: Infinity, max: -Infinity, sum: 0, values: 0, nonFinite: 0 }
            tally.count++
            bump(tally.types, extension.endsWith("npy") ? `npy ${readNpyHeader(member.bytes).descr}` : sniffFormat(member.bytes) ?? "unknown")
            bump(tally.sizes, `${raster.width}×${raster.height}`)
            bump(tally.bands, String(raster.channels))
            for (const v of raster.data) {
              if (!Number.isFinite(v)) {
                tally.nonFinite++
                continue
              }
              if (v < tally.min) tally.min = v
              if (v > tally.max) tally.max = v
              tally.sum += v
              tally.values++
            }
          }
          if (options.caption !== undefined) {
            const [extension, path] = options.caption.split("#")
            const member = item.sample.members.get(extension!.toLowerCase())
            const text = member?.bytes === undefined
              ? undefined
              : path === undefined
              ? memberText(member.bytes).trim()
              : jsonField(memberText(member.bytes), path)
            if (typeof text === "string" && text.trim() !== "") captioned++
            else {problems.push({
                file: `${file}:${item.sample.key}.${extension}`,
                kind: "missing-caption",
                reason: typeof text === "object" ? text.reason : `sample ${item.sample.key} has no caption in ${options.caption}`
              })}
          }
        }))
    }
    const report: ShardReport = {
      shards,
      samples,
      members,
      images: Object.fromEntries(
        Object.entries(images).map(([extension, t]) => [extension, {
          count: t.count,
          types: t.types,
          sizes: t.sizes,
          bands: t.bands,
          ...(t.values > 0 ? { values: { min: t.min, max: t.max, mean: t.sum / t.values } } : {}),
          nonFinitePixels: t.nonFinite
        }])
      ),
      jsonFields,
      ...(options.caption === undefined ? {} : { caption: { source: options.caption, coverage: samples === 0 ? 0 : captioned / samples } }),
      problems
    }
    return report
  })
