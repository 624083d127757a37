import { NodeContext } from "@effect/platform-node"
import { Effect, Either } from "effect"
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { LockUnreadable, ownerFileName, readLock } from "../../framework/runner/lock.ts"
import { fileStudyIn } from "../reliability/file-study.ts"

/**
 * Reading a step lock's owner file: only a missing one means "no owner"; any other failure is a
 * LockUnreadable naming the file, which `sardine status` shows. Cost: ≈ 10 s (one `sardine status` process).
 */

const read = (path: string) => Effect.runPromise(Effect.either(readLock(path)).pipe(Effect.provide(NodeContext.layer)))

describe("a step lock's owner file", () => {
  let dir = ""
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sardine-lock-owner-"))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it("that cannot be read (a symbolic link to itself) is reported naming it, not taken for a lock without an owner", async () => {
    const lock = join(dir, "looping")
    await mkdir(lock)
    const file = join(lock, ownerFileName)
    await symlink(file, file)
    const found = await read(lock)
    expect(Either.isLeft(found) && found.left).toBeInstanceOf(LockUnreadable)
    const message = Either.isLeft(found) ? found.left.message : ""
    expect(message).toContain(`step lock ${lock} is unreadable (cannot read ${file}: `)
    expect(message).not.toContain(`has no ${ownerFileName}`)
  })

  it("that is a folder is reported naming it", async () => {
    const lock = join(dir, "folder")
    await mkdir(join(lock, ownerFileName), { recursive: true })
    const found = await read(lock)
    expect(Either.isLeft(found) ? found.left.message : "").toContain(`(cannot read ${join(lock, ownerFileName)}: `)
  })

  it("that is missing with its lock folder is no lock; missing from a lock folder is an unreadable lock", async () => {
    expect(await read(join(dir, "none"))).toEqual(Either.right({ _tag: "gone" }))
    const empty = join(dir, "empty")
    await mkdir(empty)
    const found = await read(empty)
    expect(Either.isLeft(found) ? found.left.message : "").toContain(`(it has no ${ownerFileName})`)
  })

  it("that cannot be read shows in `sardine status` with the command that clears it, not as pending", async () => {
    const s = await fileStudyIn("status-lock")
    try {
      const lock = join(s.cache, "locks", s.keyOf("full-unet/reference"))
      await mkdir(join(lock, ownerFileName), { recursive: true })
      const result = await s.sardine(["status", s.file])
      expect(result.code).toBe(0)
      const line = result.stdout.split("\n").find((l) => l.includes("full-unet/reference")) ?? ""
      expect(line).toContain(`step lock ${lock} is unreadable (cannot read ${join(lock, ownerFileName)}: `)
      expect(line).toContain(`remove it: rm -r '${lock}'`)
      expect(result.stdout).toContain(", 1 locked,")
    } finally {
      await rm(s.dir, { recursive: true, force: true })
    }
  }, 120_000)

  it("that is written is read", async () => {
    const lock = join(dir, "owned")
    await mkdir(lock)
    const owner = { pid: 1, host: "h", since: "2026-12-06T00:00:00.000Z", token: "t", leaseMs: 1000 }
    await writeFile(join(lock, ownerFileName), JSON.stringify(owner))
    const found = await read(lock)
    expect(Either.isRight(found) && found.right._tag === "owned" && found.right.owner).toEqual(owner)
  })
})
