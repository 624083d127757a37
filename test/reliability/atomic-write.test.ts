/**
 * The one atomic-write helper every writer goes through: a failed or interrupted write leaves the old
 * file and no temporary; a streamed or copied file appears whole; the temporary can sit in another
 * folder of the same filesystem (MLflow's run folders). Real files in a fresh folder.
 * Cost: well under a second.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { isTemporaryName, writeFileAtomic, writeFileAtomicWith } from "../../framework/files/atomic-write.ts"

const freshFolder = Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-atomic-")))
const leftovers = (folder: string) => Effect.promise(async () => (await readdir(folder)).filter(isTemporaryName))

describe("writeFileAtomicWith", () => {
  it.effect("a fill that fails half-way leaves the old file as it was and no temporary", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const folder = yield* freshFolder
      const file = join(folder, "model.safetensors")
      yield* Effect.promise(() => writeFile(file, "old"))
      const failed = yield* writeFileAtomicWith(file, (temporary) =>
        Effect.scoped(Effect.gen(function*() {
          const handle = yield* fs.open(temporary, { flag: "wx" })
          yield* handle.writeAll(new TextEncoder().encode("half of the new"))
          return yield* Effect.fail("the second tensor does not encode" as const)
        }))).pipe(Effect.flip)
      expect(failed).toBe("the second tensor does not encode")
      expect(yield* Effect.promise(() => readFile(file, "utf8"))).toBe("old")
      expect(yield* leftovers(folder)).toEqual([])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("an interrupted fill leaves no temporary and no file", () =>
    Effect.gen(function*() {
      const folder = yield* freshFolder
      const file = join(folder, "samples.json")
      const started = yield* Deferred.make<string>()
      const fiber = yield* Effect.fork(writeFileAtomicWith(file, (temporary) =>
        Effect.zipRight(
          Effect.promise(() => writeFile(temporary, "[")),
          Effect.zipRight(Deferred.succeed(started, temporary), Effect.never)
        )))
      const temporary = yield* Deferred.await(started)
      expect(dirname(temporary)).toBe(folder)
      expect(yield* leftovers(folder)).toHaveLength(1)
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.promise(() => readdir(folder))).toEqual([])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a streamed file appears whole, replacing the old one; the temporary can sit in another folder", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const folder = yield* freshFolder
      const metrics = join(folder, "metrics")
      yield* fs.makeDirectory(metrics)
      const file = join(metrics, "loss")
      yield* writeFileAtomic(file, "old\n")
      const usedFolder = yield* writeFileAtomicWith(file, (temporary) =>
        Effect.scoped(Effect.gen(function*() {
          const handle = yield* fs.open(temporary, { flag: "wx" })
          for (const line of ["1 0.5 0\n", "2 0.25 1\n"]) yield* handle.writeAll(new TextEncoder().encode(line))
          return dirname(temporary)
        })), { temporaryFolder: folder })
      expect(usedFolder).toBe(folder)
      expect(yield* Effect.promise(() => readFile(file, "utf8"))).toBe("1 0.5 0\n2 0.25 1\n")
      expect(yield* Effect.promise(() => readdir(metrics))).toEqual(["loss"])
      expect(yield* leftovers(folder)).toEqual([])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
