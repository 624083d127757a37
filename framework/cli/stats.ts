import { Args, Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { amplitudeStatistics, type AmplitudeStatistics, QUANTILES } from "../metrics/amplitude-statistics.ts"
import { GLCM_PROPERTIES, type GlcmProperties } from "../metrics/glcm.ts"
import { imageTexture, type TextureSettings } from "../metrics/texture-sets.ts"
import type { SarUnit } from "../sar/units.ts"
import { readAmplitudeImage } from "./amplitude-image.ts"
import { anglesOption, bandOption, distancesOption, jsonOption, levelsOption, unitOption } from "./metric-options.ts"

/**
 * `sardine stats <image>...`: amplitude statistics and GLCM texture per image (issue 4's contract).
 * Chain: linear amplitude A → v = clip(A / (mean + 3·std), 0, 1) → q = min(L − 1, floor(v·L)) →
 * symmetric, normed GLCM; properties shaped [distance][angle] as scikit-image's graycoprops.
 */

export interface ImageStats {
  readonly file: string
  readonly width: number
  readonly height: number
  readonly unit: SarUnit
  readonly settings: { readonly levels: number; readonly distances: ReadonlyArray<number>; readonly angles: ReadonlyArray<number> }
  readonly amplitude: AmplitudeStatistics
  readonly glcm: GlcmProperties
}

const imageStats = (file: string, unit: SarUnit, band: Parameters<typeof readAmplitudeImage>[2], texture: TextureSettings) =>
  Effect.gen(function*() {
    const image = yield* readAmplitudeImage(file, unit, band)
    const amplitude = yield* amplitudeStatistics(image)
    const glcm = yield* imageTexture(image, texture)
    const stats: ImageStats = {
      file,
      width: image.width,
      height: image.height,
      unit,
      settings: { levels: texture.levels, distances: texture.distances, angles: texture.anglesDegrees },
      amplitude,
      glcm
    }
    return stats
  })

const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)).toString() : String(x))

/** A block of text per image: the numbers of the JSON, aligned for reading. */
export const statsText = (s: ImageStats): string => {
  const a = s.amplitude
  const lines = [
    `${s.file}  (${s.width} × ${s.height}, unit ${s.unit}, ${a.count} pixels)`,
    `  amplitude  mean ${fmt(a.mean)}  std ${fmt(a.std)}  cv ${fmt(a.cv)}  enl ${fmt(a.enl)}`,
    `  quantiles  ${QUANTILES.map(([k]) => `${k} ${fmt(a[k])}`).join("  ")}`,
    `  intensity log-cumulants  k1 ${fmt(a.logCumulant1)}  k2 ${fmt(a.logCumulant2)}  k3 ${fmt(a.logCumulant3)}`,
    `  Gamma looks ${fmt(a.gammaLooks)};  G0 alpha ${fmt(a.g0Alpha)}  gamma ${fmt(a.g0Gamma)}  looks ${fmt(a.g0Looks)}`,
    `  GLCM, ${s.settings.levels} levels; per distance (${s.settings.distances.join(", ")}), values for angles ${s.settings.angles.join(", ")}°`
  ]
  for (const name of GLCM_PROPERTIES) {
    lines.push(`    ${name.padEnd(14)}${s.glcm[name].map((row) => row.map(fmt).join(" ")).join("  |  ")}`)
  }
  return lines.join("\n")
}

const images = Args.file({ name: "image", exists: "yes" }).pipe(
  Args.atLeast(1),
  Args.withDescription("PNG, JPEG or TIFF files")
)

export const statsCommand = Command.make(
  "stats",
  {
    images,
    unit: unitOption,
    band: bandOption,
    levels: levelsOption,
    distances: distancesOption,
    angles: anglesOption,
    json: jsonOption
  },
  ({ angles, band, distances, images, json, levels, unit }) =>
    Effect.gen(function*() {
      const texture = { levels, distances, anglesDegrees: angles }
      const results = yield* Effect.forEach(images, (file) => imageStats(file, unit, band, texture))
      if (json) {
        yield* Console.log(JSON.stringify(results.length === 1 ? results[0] : results, null, 2))
      } else {
        yield* Console.log(results.map(statsText).join("\n\n"))
      }
    })
).pipe(
  Command.withDescription(
    "Amplitude statistics (mean, std, CV, ENL, quantiles, log-cumulants, Gamma looks, G0 fit) and GLCM texture of each image. The GLCM reads v = clip(A / (mean + 3·std), 0, 1) quantised to --levels, symmetric and normed; pixels equal to the file's no-data value are left out. Non-finite results print as null in JSON."
  )
)
