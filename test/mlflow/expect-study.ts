import sharp from "sharp"
import { expect } from "vitest"
import { downloadArtifact, listArtifacts, readHistory, readRun } from "./read-back.ts"
import type { LoggedRun, LoggedStudy } from "./study-scenario.ts"

/** MLflow's SQL store keeps ±Infinity as ±max double (SqlAlchemyStore.sanitize_metric_value); NaN stays NaN. */
const asSqlStoreKeepsIt = (value: number) => value === Infinity ? Number.MAX_VALUE : value === -Infinity ? -Number.MAX_VALUE : value

const IMAGE_NAME = /^images\/samples~prompt 0\+step\+(\d+)\+timestamp\+(\d+)\+[0-9a-f-]{36}(\+compressed)?\.(png|webp)$/

export const expectRunOnServer = async (
  uri: string,
  runId: string,
  logged: LoggedRun,
  options: { readonly auth?: string; readonly extraTags?: Record<string, string> } = {}
) => {
  const run = await readRun(uri, runId, options.auth)
  expect(run.info.status).toBe(logged.status)
  expect(run.info.run_name).toBe(logged.name)
  expect(run.params).toEqual(logged.params)
  expect(run.tags).toMatchObject({ ...logged.tags, ...options.extraTags })
  for (const [key, points] of Object.entries(logged.metrics)) {
    const history = await readHistory(uri, runId, key, options.auth)
    expect(history, key).toEqual(points.map((p) => ({ step: p.step, value: asSqlStoreKeepsIt(p.value), timestamp: p.timestamp })))
  }
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name)
  expect(
    run.datasets.map((d) => ({ name: d.name, digest: d.digest, source_type: d.source_type, source: JSON.parse(d.source), context: d.context }))
      .sort(byName)
  ).toEqual(
    [...logged.datasets].sort(byName).map((d) => ({
      name: d.name,
      digest: d.digest,
      source_type: d.source.startsWith("http") ? "http" : "local",
      source: d.source.startsWith("http") ? { url: d.source } : { uri: d.source },
      context: d.context
    }))
  )
  const files = await listArtifacts(uri, runId, "", options.auth)
  for (const [path, bytes] of Object.entries(logged.artifacts)) {
    expect(files.find((f) => f.path === path)?.size, path).toBe(bytes.length)
    expect((await downloadArtifact(uri, run.info.artifact_uri, path, options.auth)).equals(bytes), path).toBe(true)
  }
  const images = files.filter((f) => f.path.startsWith("images/"))
  expect(images.every((f) => IMAGE_NAME.test(f.path)), JSON.stringify(images)).toBe(true)
  const steps = [...new Set(images.map((f) => Number(IMAGE_NAME.exec(f.path)![1])))].sort()
  expect(steps).toEqual(logged.imageSteps)
  expect(images.length).toBe(2 * logged.imageSteps.length)
  return { run, images: images.map((f) => f.path) }
}

export const expectStudyOnServer = async (
  uri: string,
  study: LoggedStudy,
  runIds: (logged: LoggedRun) => string = (r) => r.runId,
  options: { readonly auth?: string; readonly extraTags?: (logged: LoggedRun) => Record<string, string> } = {}
) => {
  const parentId = runIds(study.parent)
  await expectRunOnServer(uri, parentId, study.parent, { ...options, extraTags: options.extraTags?.(study.parent) ?? {} })
  for (const child of study.children) {
    const { run, images } = await expectRunOnServer(uri, runIds(child), child, {
      ...options,
      extraTags: { ...options.extraTags?.(child), "mlflow.parentRunId": parentId }
    })
    // Full-size PNGs are the logged file itself; thumbnails fit 256 × 256 like mlflow.log_image's.
    for (const path of images) {
      const bytes = await downloadArtifact(uri, run.info.artifact_uri, path, options.auth)
      const meta = await sharp(bytes).metadata()
      if (path.endsWith(".png")) expect([meta.format, meta.width, meta.height]).toEqual(["png", 96, 64])
      else expect([meta.format, meta.width, meta.height]).toEqual(["webp", 256, 170])
    }
  }
}
