import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Schema } from "effect"
import { isAbsolute, join, resolve } from "node:path"
import { contentHash } from "../declaration/canonical-json.ts"
import type { FolderFingerprint } from "../declaration/folder-fingerprint.ts"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { writeFileAtomic } from "../files/atomic-write.ts"
import type { EngineName } from "../services/engine.ts"
import { filesUnder, sha256File } from "../files/folder-files.ts"
import { compilePlan } from "./compile.ts"
import { declaredFolders, fingerprintKey, type DeclaredFolder } from "./declared-folders.ts"
import type { Plan } from "./step.ts"

/**
 * Declared input folders enter the content keys of the steps that read them (declared-folders.ts),
 * so editing a dataset or retraining a base in place makes those steps run again. A fingerprint
 * is computed before compiling (compilePlan stays pure). A folder that is gone keeps the
 * fingerprint it last had in this cache (`<cache>/inputs/`), so the outputs made from it stay
 * usable (`sardine report` on a machine without the data).
 */

export class FolderFingerprintError extends Schema.TaggedError<FolderFingerprintError>()("FolderFingerprintError", {
  field: Schema.String,
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.field} "${this.path}": cannot read the folder to fingerprint it: ${this.reason}`
  }
}

/** Leaves out .git, .cache (Hugging Face's download metadata), .DS_Store, …: never read by a step. */
const hidden = (name: string) => name.startsWith(".")

/** The fingerprint of one folder: a hash of its files' paths and sizes with their modification times or contents. */
export const fingerprintFolder = (dir: string, mode: FolderFingerprint): Effect.Effect<string, PlatformError | Error, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const files = yield* filesUnder(dir, hidden)
    const entries = mode === "metadata"
      ? files.map((f) => [f.path, f.size, f.mtimeMs])
      : yield* Effect.forEach(
        files,
        (f) => f.size < 0 ? Effect.succeed([f.path, f.size]) : Effect.map(sha256File(join(dir, f.path)), (d) => [f.path, d.size, d.sha256])
      )
    return `${mode}:${contentHash(entries).slice(0, 20)}`
  })

/** What the cache remembers of a folder's last fingerprint. */
const Remembered = Schema.Struct({ folder: Schema.String, mode: Schema.String, fingerprint: Schema.String, at: Schema.String })

const memoFile = (cacheDir: string, absolute: string, mode: FolderFingerprint) =>
  join(cacheDir, "inputs", `${contentHash({ folder: absolute, mode }).slice(0, 20)}.json`)

export interface PlanOptions {
  /** The cache whose memory of folders that are gone is used. */
  readonly cacheDir?: string
  /** Update that memory (commands that run steps do). */
  readonly remember?: boolean
  /** The engine that computes the engine steps (default tfjs). */
  readonly engine?: EngineName
}

export interface FingerprintedPlan {
  readonly plan: Plan
  /** Lines for the user: declared folders that are gone and what their steps' keys are based on. */
  readonly notes: ReadonlyArray<string>
}

/** Compiles the declaration's plan with the fingerprints of the declared folders its steps read. */
export const planWithFingerprints = (
  loaded: LoadedDeclaration,
  options: PlanOptions = {}
): Effect.Effect<FingerprintedPlan, FolderFingerprintError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const folders = new Map<string, DeclaredFolder>()
    for (const step of compilePlan(loaded.declaration).steps) {
      for (const folder of declaredFolders(step)) folders.set(fingerprintKey(folder), folder)
    }
    const fingerprints = new Map<string, string>()
    const notes: Array<string> = []
    for (const [key, folder] of folders) {
      const absolute = isAbsolute(folder.path) ? folder.path : resolve(loaded.directory, folder.path)
      const memo = options.cacheDir === undefined ? undefined : memoFile(options.cacheDir, absolute, folder.fingerprint)
      const isFolder = yield* fs.stat(absolute).pipe(Effect.map((i) => i.type === "Directory"), Effect.orElseSucceed(() => false))
      if (isFolder) {
        const fingerprint = yield* fingerprintFolder(absolute, folder.fingerprint).pipe(
          Effect.mapError((e) => new FolderFingerprintError({ field: folder.field, path: folder.path, reason: e.message }))
        )
        fingerprints.set(key, fingerprint)
        if (memo !== undefined && options.remember === true) {
          const record = { folder: absolute, mode: folder.fingerprint, fingerprint, at: new Date().toISOString() }
          yield* fs.makeDirectory(join(options.cacheDir!, "inputs"), { recursive: true }).pipe(
            Effect.zipRight(writeFileAtomic(memo, `${JSON.stringify(record, null, 2)}\n`)),
            // Only the fallback for a folder that is gone is lost: worth no failure.
            Effect.ignore
          )
        }
        continue
      }
      const remembered = memo === undefined ? undefined : yield* fs.readFileString(memo).pipe(
        Effect.flatMap((text) => Effect.try(() => JSON.parse(text) as unknown)),
        Effect.flatMap(Schema.decodeUnknown(Remembered)),
        Effect.orElseSucceed(() => undefined)
      )
      if (remembered !== undefined) {
        fingerprints.set(key, remembered.fingerprint)
        notes.push(`${folder.field} "${folder.path}": ${absolute} is not there; its steps keep the keys of its contents on ${remembered.at}`)
      } else {
        // Steps that read it cannot be found in the cache (and `run` refuses to start them).
        fingerprints.set(key, "absent")
      }
    }
    return { plan: compilePlan(loaded.declaration, fingerprints, options.engine), notes }
  })
