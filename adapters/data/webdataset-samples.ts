import { dirname, relative, resolve } from "node:path"
import { Effect, Stream } from "effect"
import type { WebDatasetDataset } from "../../framework/declaration/dataset.ts"
import { combineMoments, emptyMoments, meanStdOf, momentsOf, normalise, validityMask } from "../../framework/sar/normalisation.ts"
import { toAmplitude } from "../../framework/sar/units.ts"
import { DatasetError, DatasetFileProblems, type DatasetItem, type PrepareOptions, type SkippedFile } from "../../framework/services/datasets.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { applyCaptionTemplate, checkTemplate } from "./caption-template.ts"
import { planWindows, windowSamples } from "./sample-windows.ts"
import { hashString } from "./seeded-random.ts"
import { singleBand } from "./single-band.ts"
import { decodeMember, jsonField, MemberProblem, memberText } from "./webdataset-members.ts"
import { listShards } from "./webdataset-shards.ts"
import { TarError, type TarMember, tarMembers } from "./webdataset-tar.ts"

/*
 * Training samples from WebDataset shards, streamed: shard by shard, member by member, a sample
 * at a time (its members grouped by key as WebDataset groups them), then the imagefolder pipeline:
 * one band → linear amplitude → no-data mask → normalisation → crops/tiles and flips → [-1, 1].
 * A damaged member loses its sample; a damaged archive loses the rest of its shard; both are named.
 */

/** Members larger than this are not read (a 1024² complex128 patch is 16 MiB). */
export const maxMemberBytes = 1 << 30

/** A sample's members by extension, as WebDataset's `group_by_keys` assembles them. */
export interface ShardSample {
  readonly shard: string
  readonly key: string
  readonly members: ReadonlyMap<string, TarMember & { readonly tooLarge?: boolean }>
}

export type ShardItem =
  | { readonly _tag: "Sample"; readonly sample: ShardSample }
  | { readonly _tag: "Problem"; readonly problem: SkippedFile }

/** WebDataset's `base_plus_ext`: the key is the path up to the first dot of the file name, the extension the rest (lower case). */
export const keyAndExtension = (name: string): { readonly key: string; readonly extension: string } | undefined => {
  const match = /^((?:.*\/|)[^.]+)[.]([^/]*)$/.exec(name)
  // Both groups are mandatory: a match has them.
  return match === null ? undefined : { key: match[1]!, extension: match[2]!.toLowerCase() }
}

const memberName = (shard: string, name: string) => `${shard}:${name}`

/**
 * The samples of one shard in order, each with the members `wanted(extension)` holds (the others
 * are listed without bytes). A member name seen twice in a sample, or an archive that cannot be read
 * on, is a problem; an archive problem ends the shard and drops its unfinished sample.
 */
export async function* shardSamples(shard: string, wanted: (extension: string) => boolean): AsyncGenerator<ShardItem> {
  let current: { key: string; members: Map<string, TarMember & { readonly tooLarge?: boolean }> } | undefined
  let duplicate: SkippedFile | undefined
  const finish = (): ShardItem | undefined => {
    const done = current
    const problem = duplicate
    current = undefined
    duplicate = undefined
    if (problem !== undefined) return { _tag: "Problem", problem }
    return done === undefined ? undefined : { _tag: "Sample", sample: { shard, key: done.key, members: done.members } }
  }
  try {
    for await (const member of tarMembers(shard, (name) => wanted(keyAndExtension(name)?.extension ?? ""), maxMemberBytes)) {
      const parts = keyAndExtension(member.name)
      if (parts === undefined) continue
      if (current?.key !== parts.key) {
        const item = finish()
        if (item !== undefined) yield item
        current = { key: parts.key, members: new Map() }
      }
      if (current.members.has(parts.extension)) {
        duplicate ??= { file: memberName(shard, member.name), kind: "duplicate-member", reason: `sample ${parts.key} has two "${parts.extension}" members` }
      }
      current.members.set(parts.extension, member)
    }
    const last = finish()
    if (last !== undefined) yield last
  } catch (error) {
    // The archive cannot be read on: cut, damaged, or not readable at all. A sample whose members all
    // came before the member that was cut is complete.
    const kind = error instanceof TarError ? error.kind : "unreadable"
    const cut = error instanceof TarError && error.member !== undefined ? keyAndExtension(error.member)?.key : undefined
    if (cut !== undefined && current !== undefined && cut !== current.key) {
      const item = finish()
      if (item !== undefined) yield item
    }
    const lostKey = current?.key ?? cut
    const lost = lostKey === undefined ? "" : ` (sample ${lostKey} and any after it are lost)`
    yield { _tag: "Problem", problem: { file: shard, kind, reason: `${(error as Error).message}${lost}` } }
  }
}

/** The extension a `caption` source reads: "meta.json#caption.MID" → "meta.json". */
const captionExtension = (source: string) => source.split("#")[0]!.toLowerCase()

type Problem = SkippedFile

const problem = (file: string, kind: string, reason: string): Problem => ({ file, kind, reason })

const memberOf = (sample: ShardSample, extension: string): Effect.Effect<TarMember, Problem> => {
  const member = sample.members.get(extension.toLowerCase())
  if (member === undefined) {
    const present = [...sample.members.keys()].join(", ") || "none"
    return Effect.fail(
      problem(memberName(sample.shard, `${sample.key}.${extension}`), "missing-member", `sample ${sample.key} has no "${extension}" member (it has ${present})`)
    )
  }
  const name = memberName(sample.shard, member.name)
  if ((member as { tooLarge?: boolean }).tooLarge === true || member.bytes === undefined) {
    return Effect.fail(problem(name, "too-large", `member of ${member.size} bytes is over the ${maxMemberBytes}-byte limit`))
  }
  return Effect.succeed(member)
}

/** The sample's caption from its `caption` source ("" when the dataset declares none). */
const captionOf = (dataset: WebDatasetDataset, sample: ShardSample): Effect.Effect<string, Problem> => {
  if (dataset.caption === undefined) return Effect.succeed("")
  const [extension, path] = dataset.caption.split("#")
  return memberOf(sample, extension!).pipe(
    Effect.flatMap((member) => {
      const name = memberName(sample.shard, member.name)
      const text = memberText(member.bytes!)
      if (path === undefined) return Effect.succeed(text.trim())
      const field = jsonField(text, path)
      return typeof field === "string" ? Effect.succeed(field) : Effect.fail(problem(name, field.kind, field.reason))
    })
  )
}

const imageOf = (sample: ShardSample, extension: string, maxPixels: number): Effect.Effect<Raster & { readonly complex: boolean }, Problem> =>
  memberOf(sample, extension).pipe(
    Effect.flatMap((member) => {
      const name = memberName(sample.shard, member.name)
      return Effect.tryPromise({
        try: () => decodeMember(member.name, member.bytes!, maxPixels),
        catch: (error) => problem(name, error instanceof MemberProblem ? error.kind : "corrupt", (error as Error).message)
      })
    })
  )

/** Linear amplitude of a sample's image band, with its validity mask. */
const amplitudeOf = (dataset: WebDatasetDataset, sample: ShardSample) =>
  imageOf(sample, dataset.image, dataset.maxPixels).pipe(
    Effect.flatMap((raster) => {
      const name = memberName(sample.shard, `${sample.key}.${dataset.image}`)
      if (raster.complex && dataset.unit !== "amplitude") {
        return Effect.fail(problem(name, "unit", `holds complex values, read as amplitude |z|, but the dataset declares unit "${dataset.unit}"`))
      }
      const band = singleBand(raster, dataset.band)
      if (typeof band === "string") return Effect.fail(problem(name, "bands", band))
      const valid = validityMask(band, dataset.noData)
      return Effect.succeed({ raster, amplitude: toAmplitude(band, dataset.unit), valid })
    })
  )

const samplesOf = (
  dataset: WebDatasetDataset,
  root: string,
  sample: ShardSample,
  options: PrepareOptions,
  statistics: { readonly mean: number; readonly std: number } | undefined
) =>
  Effect.gen(function*() {
    const id = `${relative(root, sample.shard)}:${sample.key}`
    const { raster, amplitude, valid } = yield* amplitudeOf(dataset, sample)
    const caption = yield* captionOf(dataset, sample)
    const windows = planWindows(raster.width, raster.height, dataset.resolution, dataset.seed, hashString(id))
    if (windows.length === 0) {
      return yield* Effect.fail(
        problem(
          memberName(sample.shard, `${sample.key}.${dataset.image}`),
          "too-small",
          `image ${raster.width} × ${raster.height} is smaller than the training size ${dataset.resolution.size}`
        )
      )
    }
    const unit = normalise(amplitude, dataset.normalisation, { valid, ...(statistics ? { datasetStatistics: statistics } : {}) })
    const text = applyCaptionTemplate(dataset.captionTemplate, caption, options.token)
    return windowSamples({
      id,
      source: memberName(sample.shard, `${sample.key}.${dataset.image}`),
      caption: text,
      unit,
      width: raster.width,
      windows,
      tiled: dataset.resolution.mode === "tile"
    })
  })

/** The extensions a dataset reads: its image and caption members. */
const wantedExtensions = (dataset: WebDatasetDataset) => {
  const wanted = new Set([dataset.image.toLowerCase()])
  if (dataset.caption !== undefined) wanted.add(captionExtension(dataset.caption))
  return (extension: string) => wanted.has(extension)
}

/** Every shard's samples, in shard order; problems as items. */
const shardItems = (files: ReadonlyArray<string>, wanted: (extension: string) => boolean): Stream.Stream<ShardItem> =>
  Stream.fromIterable(files).pipe(Stream.flatMap((shard) => Stream.orDie(Stream.fromAsyncIterable(shardSamples(shard, wanted), (e) => e))))

/** The folder every shard lies in (what `sardine data inspect` takes to show them all). */
const commonFolder = (files: ReadonlyArray<string>): string => {
  const [head, ...others] = files.map((f) => dirname(f).split("/"))
  if (head === undefined) return "/"
  const shared: Array<string> = []
  for (let i = 0; i < head.length && others.every((p) => p[i] === head[i]); i++) shared.push(head[i]!)
  return shared.join("/") || "/"
}

/** The shard files of a declaration, or why there are none. */
export const resolveShards = (dataset: WebDatasetDataset, root: string) =>
  Effect.tryPromise({
    try: () => listShards(dataset.shards, root),
    catch: (error) => new DatasetError({ path: root, reason: `cannot list the shards: ${(error as Error).message}` })
  }).pipe(
    Effect.flatMap(({ files, unmatched }) =>
      unmatched.length > 0
        ? Effect.fail(
          new DatasetError({
            path: resolve(root, unmatched[0]!),
            reason: `the shard pattern matches no file${unmatched.length > 1 ? ` (nor do ${unmatched.slice(1).join(", ")})` : ""}`
          })
        )
        : Effect.succeed(files)
    )
  )

/** Mean and population std of the amplitude over every readable sample (first pass for "dataset" statistics). */
const datasetStatistics = (dataset: WebDatasetDataset, files: ReadonlyArray<string>) =>
  shardItems(files, (extension) => extension === dataset.image.toLowerCase()).pipe(
    Stream.runFoldEffect(emptyMoments, (moments, item) =>
      item._tag === "Problem"
        ? Effect.succeed(moments)
        : amplitudeOf(dataset, item.sample).pipe(
          Effect.map(({ amplitude, valid }) => combineMoments(moments, momentsOf(amplitude, valid))),
          // Bad samples are reported by the second pass, where onError decides.
          Effect.orElseSucceed(() => moments)
        )),
    Effect.map(meanStdOf)
  )

export const webDatasetSamples = (
  dataset: WebDatasetDataset,
  options: PrepareOptions = {}
): Stream.Stream<DatasetItem, DatasetError | DatasetFileProblems> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const root = resolve(options.root ?? process.cwd())
      const templateProblem = checkTemplate(dataset.captionTemplate, options.token)
      if (templateProblem !== undefined) return yield* new DatasetError({ path: dataset.shards.join(", "), reason: templateProblem })
      // Validation refuses a conditioned experiment on shards (conditioning-rules.ts); this keeps a
      // direct caller from getting samples silently without their conditioning images.
      if (options.condition !== undefined) {
        return yield* new DatasetError({
          path: dataset.shards.join(", "),
          reason:
            `conditioning.from names the metadata column "${options.condition.column}", but WebDataset shards have no metadata columns and their conditioning images are not read for a ControlNet; use an image folder or synthetic scenes`
        })
      }
      const files = yield* resolveShards(dataset, root)
      const statistics = dataset.normalisation._tag === "mean-std" && dataset.normalisation.statistics === "dataset"
        ? yield* datasetStatistics(dataset, files)
        : undefined
      // As for image folders: "skip" makes each problem an item; "fail" reads every shard (no samples
      // after the first problem), then fails listing them all.
      const problems: Array<SkippedFile> = []
      const onProblem = (skipped: SkippedFile): Effect.Effect<Array<DatasetItem>> =>
        dataset.onError === "skip" ? Effect.succeed([{ _tag: "Skipped", skipped }]) : Effect.sync(() => (problems.push(skipped), []))
      const items = shardItems(files, wantedExtensions(dataset)).pipe(
        Stream.mapEffect((item) =>
          item._tag === "Problem"
            ? onProblem(item.problem)
            : samplesOf(dataset, root, item.sample, options, statistics).pipe(
              Effect.map((samples) => (problems.length > 0 ? [] : samples)),
              Effect.catchAll(onProblem)
            )
        ),
        Stream.flattenIterables
      )
      const verdict = Stream.suspend(() => problems.length > 0 ? Stream.fail(new DatasetFileProblems({ folder: commonFolder(files), problems })) : Stream.empty)
      return Stream.concat(items, verdict)
    })
  )
