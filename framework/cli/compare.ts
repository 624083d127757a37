import { Args, Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Console, Effect } from "effect"
import { type AmplitudeDistances, type DistanceDomain, domainBinning } from "../metrics/amplitude-distances.ts"
import { GLCM_PROPERTIES, type GlcmProperties } from "../metrics/glcm.ts"
import { MetricInputError } from "../metrics/metric-input.ts"
import { compareSets, summariseSet } from "../metrics/set-comparison.ts"
import type { SarUnit } from "../sar/units.ts"
import { readAmplitudeImage } from "./amplitude-image.ts"
import { anglesOption, bandOption, distancesOption, jsonOption, levelsOption, requiring, unitOption } from "./metric-options.ts"

/**
 * `sardine compare <a> <b>`: how far apart two images or two folders of images are, in
 * amplitude distribution and in GLCM texture (issue 4's contract). Every image goes through
 * the same unit conversion and per-image normalisation v = clip(A / (mean + 3·std), 0, 1); the
 * v of each side are pooled for the amplitude distances; the GLCM properties are averaged per
 * side and compared by the Canberra distance.
 */

const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]

/** The image files a side names: the file itself, or a folder's images (not recursive, by name). */
const imageFiles = (side: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const info = yield* fs.stat(side)
    if (info.type !== "Directory") return [side]
    const names = (yield* fs.readDirectory(side))
      .filter((name) => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase()))
      .sort()
    if (names.length === 0) {
      return yield* new MetricInputError({ input: side, reason: "the folder holds no PNG, JPEG or TIFF image" })
    }
    return names.map((name) => path.join(side, name))
  })

export interface Comparison {
  readonly a: { readonly path: string; readonly images: ReadonlyArray<string>; readonly samples: number }
  readonly b: { readonly path: string; readonly images: ReadonlyArray<string>; readonly samples: number }
  readonly settings: {
    readonly unit: SarUnit
    readonly domain: DistanceDomain
    readonly bins: number
    readonly range: readonly [number, number]
    readonly klPseudoCount: number
    readonly levels: number
    readonly distances: ReadonlyArray<number>
    readonly angles: ReadonlyArray<number>
    readonly textureDistance: "canberra"
  }
  readonly amplitude: AmplitudeDistances
  readonly glcm: { readonly canberra: number; readonly a: GlcmProperties; readonly b: GlcmProperties }
}

const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)).toString() : String(x))

export const comparisonText = (c: Comparison): string => {
  const s = c.settings
  const domain = s.domain.kind === "amplitude" ? "normalised amplitude" : `dB of normalised amplitude, floored at ${s.domain.floorDb} dB`
  const lines = [
    `a: ${c.a.path} (${c.a.images.length} images, ${c.a.samples} samples)`,
    `b: ${c.b.path} (${c.b.images.length} images, ${c.b.samples} samples)`,
    `amplitude (${domain}; ${s.bins} bins over [${s.range.join(", ")}], KL pseudo-count ${s.klPseudoCount})`,
    `  wasserstein ${fmt(c.amplitude.wasserstein)}  ks ${fmt(c.amplitude.ks)}  kl ${fmt(c.amplitude.kl)}  js ${fmt(c.amplitude.js)}  hellinger ${
      fmt(c.amplitude.hellinger)
    }  bhattacharyya ${fmt(c.amplitude.bhattacharyya)}`,
    `GLCM (${s.levels} levels, distances ${s.distances.join(", ")}, angles ${s.angles.join(", ")}°): Canberra distance of the set means ${fmt(c.glcm.canberra)}`
  ]
  for (const name of GLCM_PROPERTIES) {
    const show = (t: GlcmProperties) => t[name].map((row) => row.map(fmt).join(" ")).join(" | ")
    lines.push(`    ${name.padEnd(14)}a ${show(c.glcm.a)}   b ${show(c.glcm.b)}`)
  }
  return lines.join("\n")
}

const side = (name: string) => Args.path({ name, exists: "yes" }).pipe(Args.withDescription("An image file, or a folder of PNG / JPEG / TIFF images"))

const domainOption = Options.choice("domain", ["amplitude", "db"]).pipe(
  Options.withDefault("amplitude" as const),
  Options.withDescription("Where the amplitude distributions are compared: normalised amplitude v, or 20·log10(v)")
)
const floorDbOption = Options.float("floor-db").pipe(
  Options.withDefault(-60),
  requiring((x: number) => Number.isFinite(x) && x < 0, (x) => `--floor-db must be a negative number of dB, got ${x}`),
  Options.withDescription("With --domain db: v below this level (dB) counts as this level; also the lower end of the bins")
)
const binsOption = Options.integer("bins").pipe(
  Options.withDefault(256),
  requiring((n: number) => n >= 1, (n) => `--bins must be at least 1, got ${n}`),
  Options.withDescription("Equal-width bins over the domain for KL, JS, Hellinger and Bhattacharyya")
)
const pseudoCountOption = Options.float("kl-pseudo-count").pipe(
  Options.withDefault(1),
  requiring((x: number) => Number.isFinite(x) && x >= 0, (x) => `--kl-pseudo-count must be ≥ 0, got ${x}`),
  Options.withDescription("Added to every bin of both histograms before KL (Laplace smoothing); 0 turns it off")
)

export const compareCommand = Command.make(
  "compare",
  {
    a: side("a"),
    b: side("b"),
    unit: unitOption,
    band: bandOption,
    domain: domainOption,
    floorDb: floorDbOption,
    bins: binsOption,
    klPseudoCount: pseudoCountOption,
    levels: levelsOption,
    distances: distancesOption,
    angles: anglesOption,
    json: jsonOption
  },
  (o) =>
    Effect.gen(function*() {
      const texture = { levels: o.levels, distances: o.distances, anglesDegrees: o.angles }
      const domain: DistanceDomain = o.domain === "amplitude" ? { kind: "amplitude" } : { kind: "db", floorDb: o.floorDb }
      const binning = domainBinning(domain, o.bins)
      // List both sides before reading either, so an empty folder fails at once.
      const filesA = yield* imageFiles(o.a)
      const filesB = yield* imageFiles(o.b)
      const summarise = (files: ReadonlyArray<string>) => summariseSet(files.length, (i) => readAmplitudeImage(files[i]!, o.unit, o.band), texture)
      const a = yield* summarise(filesA)
      const b = yield* summarise(filesB)
      const { amplitude, glcm } = yield* compareSets({ ...a, name: o.a }, { ...b, name: o.b }, {
        domain,
        bins: o.bins,
        klPseudoCount: o.klPseudoCount,
        texture
      })
      const comparison: Comparison = {
        a: { path: o.a, images: filesA, samples: a.samples.length },
        b: { path: o.b, images: filesB, samples: b.samples.length },
        settings: {
          unit: o.unit,
          domain,
          bins: o.bins,
          range: [binning.lo, binning.hi],
          klPseudoCount: o.klPseudoCount,
          levels: o.levels,
          distances: o.distances,
          angles: o.angles,
          textureDistance: "canberra"
        },
        amplitude,
        glcm
      }
      yield* Console.log(o.json ? JSON.stringify(comparison, null, 2) : comparisonText(comparison))
    })
).pipe(
  Command.withDescription(
    "Distances between two images or folders: Wasserstein-1 and Kolmogorov–Smirnov on the exact pooled samples of v = clip(A / (mean + 3·std), 0, 1) per image; KL (smoothed), Jensen–Shannon divergence (nats), Hellinger and Bhattacharyya on --bins bins; GLCM properties averaged per side and their Canberra distance."
  )
)
