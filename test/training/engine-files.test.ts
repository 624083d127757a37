import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import { readJsonFile } from "../../adapters/tfjs/model-config.ts"
import { DataFolderError, readIndexFile } from "../../adapters/tfjs/training/index-files.ts"
import { restoreCheckpoint } from "../../adapters/tfjs/training/training-checkpoint.ts"

/**
 * The tfjs engine's file reads on real files: a file that cannot be read is an error naming it, with
 * the filesystem's error as its cause, and only "nothing there" reads as absent. Milliseconds.
 */

const dir = mkdtempSync(join(tmpdir(), "sardine-engine-files-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("the tfjs engine's file reads", () => {
  it.effect("a work folder without checkpoints starts fresh", () =>
    Effect.gen(function*() {
      const work = join(dir, "fresh")
      mkdirSync(work)
      expect(Option.isNone(yield* restoreCheckpoint(work, [], 1))).toBe(true)
    }))

  it.effect("a checkpoints path that cannot be looked into is an error, not a fresh start", () =>
    Effect.gen(function*() {
      const work = join(dir, "blocked")
      mkdirSync(work)
      writeFileSync(join(work, "checkpoints"), "a file where the checkpoints folder belongs")
      const error = yield* Effect.flip(restoreCheckpoint(work, [], 1))
      expect(error).toBeInstanceOf(DataFolderError)
      expect(error.message).toMatch(new RegExp(`^${join(work, "checkpoints", "latest.json")}: ENOTDIR`))
      expect((error as DataFolderError).cause).toMatchObject({ _tag: "SystemError", reason: "BadResource" })
    }))

  it.effect("a missing index or config file names the file and keeps the filesystem's error", () =>
    Effect.gen(function*() {
      const missing = join(dir, "nowhere.json")
      const index = yield* Effect.flip(readIndexFile(missing, Schema.Unknown))
      expect(index.message).toBe(`${missing}: not readable (ENOENT: no such file or directory, open '${missing}')`)
      expect(index.cause).toMatchObject({ _tag: "SystemError", reason: "NotFound", pathOrDescriptor: missing })
      const config = yield* Effect.flip(readJsonFile(missing))
      expect(config.message).toBe(`${missing}: not readable (ENOENT: no such file or directory, open '${missing}')`)
      expect(config.cause).toMatchObject({ _tag: "SystemError", reason: "NotFound" })
    }))

  it.effect("a file that is not JSON names the file and the parser's complaint", () =>
    Effect.gen(function*() {
      const file = join(dir, "broken.json")
      writeFileSync(file, "{ not json")
      const error = yield* Effect.flip(readIndexFile(file, Schema.Unknown))
      expect(error.message).toMatch(new RegExp(`^${file}: not readable JSON \\(`))
      expect(error.cause).toBeInstanceOf(SyntaxError)
    }))
})
