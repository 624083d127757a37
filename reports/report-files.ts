import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { join } from "node:path"
import { writeFileAtomic, writeFolderAtomic } from "../framework/files/atomic-write.ts"
import type { ImageIO } from "../framework/services/image-io.ts"
import { ReportError, reportRequestFile, type RenderedReport, type SavedReportRequest } from "../framework/services/report-renderer.ts"
import { conditionedImages } from "./conditioned-rows.ts"
import { htmlReport } from "./html-report.ts"
import { chartFile, markdownReport } from "./markdown-report.ts"
import type { ReportContent } from "./report-content.ts"
import { joinTarget, thumbnail } from "./thumbnails.ts"

const failed = (path: string, what: string) => (e: { readonly message: string }) => new ReportError({ path, reason: `${what}: ${e.message}` })

const writeAtomically = (file: string, text: string) => writeFileAtomic(file, text).pipe(Effect.mapError(failed(file, "cannot write")))

/** Grid images embedded at most this many at once (each is read, maybe shrunk, and encoded). */
const imageConcurrency = 8

/**
 * Writes a report into `outDir`: images/ (grid thumbnails and chart SVGs, for report.md) built
 * aside and swapped in whole, then report-request.json, report.md and report.html, each renamed
 * into place. report.html comes last, so its presence means the report is complete.
 */
export const writeReport = (
  content: ReportContent,
  outDir: string,
  request: SavedReportRequest
): Effect.Effect<RenderedReport, ReportError, ImageIO | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(outDir, { recursive: true }).pipe(Effect.mapError(failed(outDir, "cannot create the report folder")))
    const embedded = new Map<string, string>()
    const imagesDir = join(outDir, "images")
    yield* writeFolderAtomic(imagesDir, (staging) =>
      Effect.gen(function*() {
        const images = [...content.grid.rows.flatMap((r) => r.cells.flatMap((c) => c.images)), ...conditionedImages(content.conditioned)]
        const unique = [...new Map(images.map((i) => [i.target, i])).values()]
        yield* Effect.forEach(unique, (image) =>
          thumbnail(image.source, joinTarget(staging, image.target.replace(/^images\//, ""))).pipe(
            Effect.map((bytes) => embedded.set(image.target, `data:image/png;base64,${Buffer.from(bytes).toString("base64")}`))
          ), { concurrency: imageConcurrency, discard: true })
        const charts = [
          ...content.distributions.flatMap((d) => [d.histogram, d.cdf]),
          ...content.glcmPanels,
          ...(content.alignment === undefined ? [] : [content.alignment]),
          ...content.trainingCurves
        ]
        yield* fs.makeDirectory(join(staging, "charts"), { recursive: true }).pipe(Effect.mapError(failed(join(staging, "charts"), "cannot create")))
        yield* Effect.forEach(charts, (chart) => {
          const file = joinTarget(staging, chartFile(chart).replace(/^images\//, ""))
          return fs.writeFileString(file, `<?xml version="1.0" encoding="UTF-8"?>\n${chart.svg}\n`).pipe(Effect.mapError(failed(file, "cannot write")))
        }, { discard: true })
      }), { replace: true }).pipe(
        // The images folder is built aside and swapped in whole; a failed rendering leaves no staging folder behind.
        Effect.mapError((e) => e._tag === "ReportError" ? e : failed(imagesDir, "cannot replace the images folder")(e))
      )
    const html = join(outDir, "report.html")
    const markdown = join(outDir, "report.md")
    yield* writeAtomically(join(outDir, reportRequestFile), `${JSON.stringify(request, null, 2)}\n`)
    yield* writeAtomically(markdown, markdownReport(content))
    yield* writeAtomically(html, htmlReport(content, embedded))
    return { html, markdown }
  })
