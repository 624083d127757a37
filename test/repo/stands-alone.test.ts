import { readdir, readFile, stat } from "node:fs/promises"
import { join, relative } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../support/run-process.ts"

/** What the checkout holds besides its own files: installs, caches, outputs. */
const notSource = new Set(["node_modules", ".git", ".venv", ".venv-mlflow", ".sardine", "mlruns", "test-output", ".work"])

const files = async (dir: string): Promise<ReadonlyArray<string>> => {
  const found: Array<string> = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (notSource.has(entry.name)) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) { for (const inner of await files(path)) found.push(inner) }
    else if (entry.isFile()) found.push(path)
  }
  return found
}

describe("the repository stands alone", () => {
  it("no file refers to the workplace folder next to the clone", async () => {
    // Built from parts, so that this file does not name it itself.
    const outside = ["..", "shared", ""].join("/")
    const mentions: Array<string> = []
    for (const file of await files(repoRoot)) {
      if ((await stat(file)).size > 4_000_000) continue
      if ((await readFile(file, "latin1")).includes(outside)) mentions.push(relative(repoRoot, file))
    }
    expect(mentions).toEqual([])
  })
})
