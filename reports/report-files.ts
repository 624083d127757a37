import { Effect } from "effect"
import { mkdir, rename, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { ImageIO } from "../framework/services/image-io.ts"
import { ReportError, reportRequestFile, type RenderedReport, type SavedReportRequest } from "../framework/services/report-renderer.ts"
import { htmlReport } from "./html-report.ts"
import { chartFile, markdownReport } from "./markdown-report.ts"
import type { ReportContent } from "./report-content.ts"
import { joinTarget, thumbnail } from "./thumbnails.ts"

const attempt = (path: string, what: string, run: () => Promise<unknown>) =>
  Effect.tryPromise({ try: run, catch: (e) => new ReportError({ path, reason: `${what}: ${(e as Error).message}` }) })

/** Temp name, then rename: a reader never sees half a file. */
const writeAtomically = (file: string, text: string) =>
  attempt(file, "cannot write", async () => {
    await writeFile(`${file}.partial`, text)
    await rename(`${file}.partial`, file)
  })

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
): Effect.Effect<RenderedReport, ReportError, ImageIO> =>
  Effect.gen(function*() {
    yield* attempt(outDir, "cannot create the report folder", () => mkdir(outDir, { recursive: true }))
    const staging = join(outDir, `images.partial-${process.pid}`)
    yield* attempt(staging, "cannot clear", () => rm(staging, { recursive: true, force: true }))
    const embedded = new Map<string, string>()
    yield* Effect.gen(function*() {
      const images = content.grid.rows.flatMap((r) => r.cells.flat())
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
      yield* attempt(join(staging, "charts"), "cannot create", () => mkdir(join(staging, "charts"), { recursive: true }))
      yield* Effect.forEach(charts, (chart) => {
        const file = joinTarget(staging, chartFile(chart).replace(/^images\//, ""))
        return attempt(file, "cannot write", () => writeFile(file, `<?xml version="1.0" encoding="UTF-8"?>\n${chart.svg}\n`))
      }, { discard: true })
      const imagesDir = join(outDir, "images")
      yield* attempt(imagesDir, "cannot replace the images folder", async () => {
        await rm(imagesDir, { recursive: true, force: true })
        await rename(staging, imagesDir)
      })
    }).pipe(
      // A failed rendering leaves no staging folder behind.
      Effect.onError(() => Effect.promise(() => rm(staging, { recursive: true, force: true })))
    )
    const html = join(outDir, "report.html")
    const markdown = join(outDir, "report.md")
    yield* writeAtomically(join(outDir, reportRequestFile), `${JSON.stringify(request, null, 2)}\n`)
    yield* writeAtomically(markdown, markdownReport(content))
    yield* writeAtomically(html, htmlReport(content, embedded))
    return { html, markdown }
  })
