import { Args, Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Option } from "effect"
import { join } from "node:path"
import { isTemporaryName } from "../files/atomic-write.ts"
import { filesUnder } from "../files/folder-files.ts"
import type { Step } from "../plan/step.ts"
import { cacheLayout } from "../runner/cache.ts"
import { describeOwner, LockUnreadable, readLock, staleness, tryHoldLock } from "../runner/lock.ts"
import { ranksFolder, resumableKinds } from "../runner/resume-point.ts"
import { engineNames } from "../services/engine.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { loadPlan } from "./declaration-plan.ts"
import { lockLeaseOption } from "./step-options.ts"

const files = Args.file({ name: "file", exists: "yes" }).pipe(
  Args.atLeast(1),
  Args.withDescription("The declarations whose cached outputs and resumable trainings to keep (every other one is removed)")
)
const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("List what would be removed and how much space it holds; remove nothing"))

/** Something `clean` removes, and why. */
interface Removal {
  readonly path: string
  readonly why: string
  /** The step lock to hold while removing (none for leftovers nobody uses). */
  readonly key?: string
}

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/**
 * `sardine clean`: removes from the cache what the given declarations do not use: finished outputs
 * and work folders of steps not in their plans, work folders of their steps that cannot resume
 * (left by a crash), what a killed multi-process training left beside its checkpoints (`.ranks`),
 * locks of dead processes, and temporary leftovers of interrupted writes.
 * A step locked by a live process (another run) is never touched.
 */
export const cleanCommand = Command.make(
  "clean",
  { files, cacheDir: cacheDirOption, dryRun, lockLease: lockLeaseOption },
  ({ cacheDir, dryRun, files, lockLease }) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const cache = cacheLayout(cacheDir)
      const kept = new Map<string, Step>()
      for (const file of files) {
        // The steps of either engine are kept: a cache may hold a study computed by both.
        for (const [i, engine] of engineNames.entries()) {
          const { plan } = yield* loadPlan(file, { engine: Option.some(engine), cacheDir, quiet: i > 0 })
          for (const step of plan.steps) kept.set(step.key, step)
        }
      }
      const list = (folder: string) => fs.readDirectory(join(cacheDir, folder)).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
      const removals: Array<Removal> = []
      const unreadable: Array<string> = []
      for (const folder of ["steps", "partial", "locks", "inputs"]) {
        for (const name of yield* list(folder)) {
          const path = join(cacheDir, folder, name)
          if (isTemporaryName(name)) {
            removals.push({ path, why: "left by an interrupted write" })
            continue
          }
          const step = kept.get(name)
          if (folder === "steps" && step === undefined) removals.push({ path, key: name, why: "output of a step no given declaration has" })
          if (folder === "partial" && step === undefined) removals.push({ path, key: name, why: "work folder of a step no given declaration has" })
          if (folder === "partial" && step !== undefined && !resumableKinds.has(step.kind)) {
            removals.push({ path, key: name, why: `work folder of ${step.id}, which starts over when run` })
          }
          if (
            folder === "partial" && step !== undefined && resumableKinds.has(step.kind) &&
            (yield* fs.exists(join(path, ranksFolder)).pipe(Effect.orElseSucceed(() => false)))
          ) {
            removals.push({
              path: join(path, ranksFolder),
              key: name,
              why: `the training processes' shared folder of ${step.id}, left by a killed launcher (its checkpoints stay)`
            })
          }
          if (folder === "locks") {
            const found = yield* readLock(path).pipe(Effect.either)
            if (found._tag === "Left") unreadable.push(found.left.message)
            else if (found.right._tag === "owned") {
              const dead = yield* staleness(found.right.owner, found.right.heartbeatAgeMs)
              if (dead !== undefined) removals.push({ path, key: name, why: `lock of ${describeOwner(found.right.owner)}: ${dead}` })
            }
          }
        }
      }
      let total = 0
      let removed = 0
      for (const removal of removals) {
        const bytes = (yield* filesUnder(removal.path).pipe(Effect.orElseSucceed(() => []))).reduce((sum, f) => sum + Math.max(0, f.size), 0)
        const info = yield* fs.stat(removal.path).pipe(Effect.option)
        const size = info._tag === "Some" && info.value.type === "File" ? Number(info.value.size) : bytes
        if (dryRun) {
          yield* Console.log(`would remove ${removal.path}  (${megabytes(size)}): ${removal.why}`)
          total += size
          removed += 1
          continue
        }
        // Holding the step's lock while removing: a run that starts the step meanwhile waits, one running it is left alone.
        const done = yield* Effect.scoped(Effect.gen(function*() {
          if (removal.key !== undefined) {
            // A dead owner's lock is taken over silently: removing it is what this does.
            const holder = yield* tryHoldLock(cache.lock(removal.key), lockLease, () => Effect.void)
            if (holder !== undefined) {
              yield* Console.log(`kept ${removal.path}: ${describeOwner(holder)} is using it`)
              return false
            }
          }
          yield* fs.remove(removal.path, { recursive: true, force: true })
          return true
        })).pipe(
          Effect.catchIf((e): e is LockUnreadable => e._tag === "LockUnreadable", (e) => Effect.as(Console.log(`kept ${removal.path}: ${e.message}`), false))
        )
        if (!done) continue
        yield* Console.log(`removed ${removal.path}  (${megabytes(size)}): ${removal.why}`)
        total += size
        removed += 1
      }
      for (const message of unreadable) yield* Console.log(`not removed: ${message}`)
      yield* Console.log(
        removed === 0
          ? `nothing to remove in ${cacheDir}`
          : `${dryRun ? "would remove" : "removed"} ${removed} item(s), ${megabytes(total)} (cache: ${cacheDir})`
      )
    })
).pipe(
  Command.withDescription(
    "Remove from the cache what the given declarations do not use: outputs and work folders of other steps, work folders " +
      "that cannot resume, the processes' folder (.ranks) a killed multi-process training left, locks of dead processes, leftovers of interrupted writes. Keeps the declarations' outputs and " +
      "their interrupted trainings; never touches a step another process is running. --dry-run lists what and how much."
  )
)
