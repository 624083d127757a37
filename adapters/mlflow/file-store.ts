import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import { mkdir, open, readdir, readFile, stat } from "node:fs/promises"
import { dirname, join, relative, sep } from "node:path"
import { writeFileAtomicWith } from "../../framework/files/atomic-write.ts"
import { writeFileAtomically } from "../files/atomic-write-node.ts"
import YAML from "yaml"
import { TrackerError, TrackerFileError } from "../../framework/services/tracker.ts"
import {
  type ExperimentMeta,
  parseExperimentMeta,
  parseMetricLine,
  parseRunMeta,
  RESERVED_EXPERIMENT_FOLDERS,
  type RunMeta,
  TRASH_FOLDER
} from "./file-store-format.ts"

/*
 * File operations on an MLflow folder. Every file is written under a temporary name and renamed into
 * place, so MLflow (or a crash) never sees half a file. The temporary files sit directly in the run's
 * (or experiment's) folder: MLflow only walks that folder's metrics/, params/, tags/ and artifacts/
 * sub-folders and lists sub-folders (never plain files) of experiments and of the root.
 */

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

export const ioError = (root: string, operation: string) => (error: unknown) => new TrackerError({ operation, target: root, reason: reasonOf(error) })

export const exists = (path: string): Effect.Effect<boolean> => Effect.tryPromise(() => stat(path)).pipe(Effect.as(true), Effect.orElseSucceed(() => false))

/** Writes `content` to `file` through a temporary file in `tempDir` (same file system). */
export const writeAtomically = (
  root: string,
  file: string,
  content: string | Uint8Array,
  tempDir: string
): Effect.Effect<void, TrackerError> =>
  writeFileAtomically(file, content, { temporaryFolder: tempDir }).pipe(Effect.mapError(ioError(root, `write ${relative(root, file)}`)))

/** Copies a file into place the same way, streaming (copyFile) rather than reading it whole. */
export const copyAtomically = (
  root: string,
  source: string,
  file: string,
  tempDir: string
): Effect.Effect<void, TrackerError | TrackerFileError> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(dirname(file), { recursive: true }).pipe(Effect.mapError(ioError(root, `write ${relative(root, file)}`)))
    yield* writeFileAtomicWith(
      file,
      (temporary) => fs.copyFile(source, temporary).pipe(Effect.mapError((error) => new TrackerFileError({ file: source, reason: reasonOf(error) }))),
      { temporaryFolder: tempDir }
    ).pipe(Effect.mapError((error) => error._tag === "TrackerFileError" ? error : ioError(root, `write ${relative(root, file)}`)(error)))
  }).pipe(Effect.provide(NodeFileSystem.layer))

/**
 * Appends lines to a metrics file with one write. A line cut short by an earlier crash is dropped first, so
 * the file stays readable by MLflow (which refuses a malformed line).
 */
export const appendLines = (root: string, file: string, lines: string): Effect.Effect<void, TrackerError> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(dirname(file), { recursive: true })
      const handle = await open(file, "a+")
      try {
        const { size } = await handle.stat()
        if (size > 0) {
          const tailSize = Math.min(size, 4096)
          const tail = Buffer.alloc(tailSize)
          await handle.read(tail, 0, tailSize, size - tailSize)
          if (tail[tailSize - 1] !== 0x0a) {
            const lastNewline = tail.lastIndexOf(0x0a)
            await handle.truncate(lastNewline < 0 ? Math.max(0, size - tailSize) : size - tailSize + lastNewline + 1)
          }
        }
        await handle.appendFile(lines)
      } finally {
        await handle.close()
      }
    },
    catch: ioError(root, `append to ${relative(root, file)}`)
  })

export const readYaml = (file: string): Effect.Effect<unknown, TrackerFileError> =>
  Effect.tryPromise({
    try: async () => YAML.parse(await readFile(file, "utf8")) as unknown,
    catch: (error) => new TrackerFileError({ file, reason: `not readable YAML: ${reasonOf(error)}` })
  })

export const readText = (file: string): Effect.Effect<string, TrackerFileError> =>
  Effect.tryPromise({ try: () => readFile(file, "utf8"), catch: (error) => new TrackerFileError({ file, reason: reasonOf(error) }) })

const subfolders = (dir: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.tryPromise(() => readdir(dir, { withFileTypes: true })).pipe(
    Effect.map((entries) => entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()),
    Effect.orElseSucceed(() => [])
  )

export interface StoredExperiment {
  readonly dir: string
  readonly meta: ExperimentMeta
  readonly deleted: boolean
}

/** Experiments of the store, active ones and those in .trash; folders without a readable meta.yaml are skipped. */
export const listExperiments = (root: string): Effect.Effect<ReadonlyArray<StoredExperiment>> =>
  Effect.gen(function*() {
    const out: Array<StoredExperiment> = []
    for (const [base, deleted] of [[root, false], [join(root, TRASH_FOLDER), true]] as const) {
      for (const name of yield* subfolders(base)) {
        if (!deleted && (name === TRASH_FOLDER || name === "models")) continue
        const raw = yield* Effect.option(readYaml(join(base, name, "meta.yaml")))
        const meta = raw._tag === "Some" ? parseExperimentMeta(raw.value) : undefined
        if (meta !== undefined) out.push({ dir: join(base, name), meta, deleted: deleted || meta.lifecycle_stage === "deleted" })
      }
    }
    return out
  })

export interface StoredRun {
  readonly dir: string
  readonly meta: RunMeta
}

/** Runs of one experiment folder (MLflow's `_list_run_infos`): sub-folders with a readable meta.yaml. */
export const listRuns = (experimentDir: string): Effect.Effect<ReadonlyArray<StoredRun>> =>
  Effect.gen(function*() {
    const out: Array<StoredRun> = []
    for (const name of yield* subfolders(experimentDir)) {
      if (RESERVED_EXPERIMENT_FOLDERS.has(name)) continue
      const raw = yield* Effect.option(readYaml(join(experimentDir, name, "meta.yaml")))
      const meta = raw._tag === "Some" ? parseRunMeta(raw.value) : undefined
      if (meta !== undefined && meta.run_id === name) out.push({ dir: join(experimentDir, name), meta })
    }
    return out
  })

/** Every file under `dir`, as "/"-separated paths relative to it (keys with "/" are nested folders). */
export const filesUnder = (dir: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.tryPromise(() => readdir(dir, { recursive: true, withFileTypes: true })).pipe(
    Effect.map((entries) =>
      entries
        .filter((e) => e.isFile())
        .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join("/"))
        .sort()
    ),
    Effect.orElseSucceed(() => [])
  )

/** key → value for params/ or tags/ of a run. */
export const readKeyValues = (dir: string): Effect.Effect<Record<string, string>, TrackerFileError> =>
  Effect.gen(function*() {
    const out: Record<string, string> = {}
    for (const key of yield* filesUnder(dir)) out[key] = yield* readText(join(dir, ...key.split("/")))
    return out
  })

export interface StoredMetricPoint {
  readonly key: string
  readonly timestamp: number
  readonly value: number
  readonly step: number
}

/** The full history of every metric of a run; a malformed line names its file and line. */
export const readMetrics = (runDir: string): Effect.Effect<ReadonlyArray<StoredMetricPoint>, TrackerFileError> =>
  Effect.gen(function*() {
    const dir = join(runDir, "metrics")
    const out: Array<StoredMetricPoint> = []
    for (const key of yield* filesUnder(dir)) {
      const file = join(dir, ...key.split("/"))
      const lines = (yield* readText(file)).split("\n")
      for (const [i, line] of lines.entries()) {
        if (line.trim().length === 0) continue
        const point = parseMetricLine(line)
        if (point === undefined) {
          return yield* Effect.fail(
            new TrackerFileError({ file, reason: `line ${i + 1} is not "<timestamp> <value> <step>": ${JSON.stringify(line.slice(0, 80))}` })
          )
        }
        out.push({ key, ...point })
      }
    }
    return out
  })
