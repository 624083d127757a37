import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { ImageIO } from "../framework/services/image-io.ts"
import { ReportRenderer, type ReportRequest } from "../framework/services/report-renderer.ts"
import { reportContent } from "./report-content.ts"
import { writeReport } from "./report-files.ts"
import { studyResults } from "./study-results.ts"

/** Lays out tables and charts once from the request, writes report.html and report.md. */
export const renderReport = (request: ReportRequest) =>
  writeReport(reportContent(studyResults(request)), request.outDir, {
    study: request.study,
    ...(request.tracking === undefined ? {} : { tracking: request.tracking }),
    ...(request.backend === undefined ? {} : { backend: request.backend })
  })

/** The production ReportRenderer; it decodes and writes grid images through ImageIO. */
export const ReportRendererLive = Layer.effect(
  ReportRenderer,
  Effect.map(ImageIO, (io) => ({
    render: (request: ReportRequest) => renderReport(request).pipe(Effect.provideService(ImageIO, io), Effect.provide(NodeFileSystem.layer))
  }))
)
