import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import { dirname, join, relative, sep } from "node:path"
import { writeFileAtomicWith } from "../../framework/files/atomic-write.ts"
import { writeFileAtomically } from "../files/atomic-write-node.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
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

const ioError = (root: string, operation: string) => (error: PlatformError) => new TrackerError({ operation, target: root, reason: fileProblem(error) })

/**
 * Node's filesystem for the store's operations: the Tracker service's operations require nothing, so
 * each operation here provides it.
 */
const onNode = <A, E>(use: (fs: FileSystem.FileSystem) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(FileSystem.FileSystem, use).pipe(Effect.provide(NodeFileSystem.layer))

const fileError = (file: string) => (error: PlatformError) => new TrackerFileError({ file, reason: fileProblem(error) })

/** Whether `path` exists; one that cannot be looked at (no permission) is an error naming it. */
export const exists = (path: string): Effect.Effect<boolean, TrackerFileError> => onNode((fs) => fs.exists(path).pipe(Effect.mapError(fileError(path))))

export const makeFolder = (root: string, dir: string, operation: string): Effect.Effect<void, TrackerError> =>
  onNode((fs) => fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(ioError(root, operation))))

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
      (temporary) => fs.copyFile(source, temporary).pipe(Effect.mapError((error) => new TrackerFileError({ file: source, reason: fileProblem(error) }))),
      { temporaryFolder: tempDir }
    ).pipe(Effect.mapError((error) => error._tag === "TrackerFileError" ? error : ioError(root, `write ${relative(root, file)}`)(error)))
  }).pipe(Effect.provide(NodeFileSystem.layer))

/**
 * Appends lines to a metrics file with one write. A line cut short by an earlier crash is dropped first, so
 * the file stays readable by MLflow (which refuses a malformed line).
 */
export const appendLines = (root: string, file: string, lines: string): Effect.Effect<void, TrackerError> =>
  onNode((fs) =>
    Effect.gen(function*() {
      yield* fs.makeDirectory(dirname(file), { recursive: true })
      const handle = yield* fs.open(file, { flag: "a+" })
      const size = Number((yield* handle.stat).size)
      if (size > 0) {
        const tailSize = Math.min(size, 4096)
        yield* handle.seek(size - tailSize, "start")
        const tail = Option.getOrElse(yield* handle.readAlloc(tailSize), () => new Uint8Array())
        if (tail[tail.length - 1] !== 0x0a) {
          const lastNewline = tail.lastIndexOf(0x0a)
          yield* handle.truncate(lastNewline < 0 ? Math.max(0, size - tailSize) : size - tailSize + lastNewline + 1)
        }
      }
      // Opened for appending: the write lands at the end, wherever the cursor is.
      yield* handle.writeAll(new TextEncoder().encode(lines))
    }).pipe(Effect.scoped, Effect.mapError(ioError(root, `append to ${relative(root, file)}`)))
  )

export const readYaml = (file: string): Effect.Effect<unknown, TrackerFileError> =>
  Effect.flatMap(
    readText(file),
    (text) => Effect.try({ try: () => YAML.parse(text) as unknown, catch: (error) => new TrackerFileError({ file, reason: reasonOf(error) }) })
  ).pipe(Effect.mapError((error) => new TrackerFileError({ file, reason: `not readable YAML: ${error.reason}` })))

export const readText = (file: string): Effect.Effect<string, TrackerFileError> =>
  onNode((fs) => fs.readFileString(file).pipe(Effect.mapError(fileError(file))))

/** The file's text, none when it does not exist; one that cannot be read is an error naming it. */
export const readOptionalText = (file: string): Effect.Effect<Option.Option<string>, TrackerFileError> =>
  onNode((fs) =>
    fs.readFileString(file).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeed(Option.none())),
      Effect.mapError(fileError(file))
    )
  )

/** The sub-folders of `dir` (links to folders count, as in MLflow's `os.path.isdir`); none when `dir` does not exist. */
const subfolders = (dir: string): Effect.Effect<ReadonlyArray<string>, TrackerFileError> =>
  onNode((fs) =>
    Effect.gen(function*() {
      const names = yield* fs.readDirectory(dir).pipe(Effect.catchIf(isNotFound, () => Effect.succeed([])), Effect.mapError(fileError(dir)))
      const folders = yield* Effect.filter(names, (name) =>
        fs.stat(join(dir, name)).pipe(
          Effect.map((info) => info.type === "Directory"),
          // A dangling link is no folder.
          Effect.catchIf(isNotFound, () => Effect.succeed(false)),
          Effect.mapError(fileError(join(dir, name)))
        ))
      return folders.sort()
    })
  )

export interface StoredExperiment {
  readonly dir: string
  readonly meta: ExperimentMeta
  readonly deleted: boolean
}

/**
 * A folder's meta.yaml as YAML, none when it is absent or not YAML (MLflow skips such folders too);
 * one that exists but cannot be read (no permission) is an error naming it.
 */
const folderMeta = (file: string): Effect.Effect<Option.Option<unknown>, TrackerFileError> =>
  Effect.map(readOptionalText(file), Option.flatMap((text) => Option.liftThrowable(() => YAML.parse(text) as unknown)()))

/** Experiments of the store, active ones and those in .trash; folders without a meta.yaml or with one that is not YAML are skipped. */
export const listExperiments = (root: string): Effect.Effect<ReadonlyArray<StoredExperiment>, TrackerFileError> =>
  Effect.gen(function*() {
    const out: Array<StoredExperiment> = []
    for (const [base, deleted] of [[root, false], [join(root, TRASH_FOLDER), true]] as const) {
      for (const name of yield* subfolders(base)) {
        if (!deleted && (name === TRASH_FOLDER || name === "models")) continue
        const raw = yield* folderMeta(join(base, name, "meta.yaml"))
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

/** Runs of one experiment folder (MLflow's `_list_run_infos`): sub-folders with a meta.yaml that parses. */
export const listRuns = (experimentDir: string): Effect.Effect<ReadonlyArray<StoredRun>, TrackerFileError> =>
  Effect.gen(function*() {
    const out: Array<StoredRun> = []
    for (const name of yield* subfolders(experimentDir)) {
      if (RESERVED_EXPERIMENT_FOLDERS.has(name)) continue
      const raw = yield* folderMeta(join(experimentDir, name, "meta.yaml"))
      const meta = raw._tag === "Some" ? parseRunMeta(raw.value) : undefined
      if (meta !== undefined && meta.run_id === name) out.push({ dir: join(experimentDir, name), meta })
    }
    return out
  })

/** Every file under `dir`, as "/"-separated paths relative to it (keys with "/" are nested folders); none when `dir` does not exist. */
export const filesUnder = (dir: string): Effect.Effect<ReadonlyArray<string>, TrackerFileError> =>
  onNode((fs) =>
    Effect.gen(function*() {
      const paths = yield* fs.readDirectory(dir, { recursive: true }).pipe(
        Effect.catchIf(isNotFound, () => Effect.succeed([])),
        Effect.mapError(fileError(dir))
      )
      const files = yield* Effect.filter(paths, (path) =>
        fs.stat(join(dir, path)).pipe(
          Effect.map((info) => info.type === "File"),
          Effect.catchIf(isNotFound, () => Effect.succeed(false)),
          Effect.mapError(fileError(join(dir, path)))
        ))
      return files.map((path) => path.split(sep).join("/")).sort()
    })
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
