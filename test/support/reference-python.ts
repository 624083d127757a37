import { existsSync } from "node:fs"
import { join } from "node:path"
import { repoRoot } from "./run-process.ts"

/**
 * The Python interpreter with the pinned reference libraries (tools/requirements.txt: torch, diffusers,
 * transformers, peft, accelerate, …), which the tests use as the real consumer of sardine's files and
 * as the torch engine's environment: `SARDINE_PYTHON` when set, else the repository's `.venv`.
 * A missing interpreter is an error that says how to make it, never a skipped test.
 */
export const referencePython = (): string => {
  const python = process.env.SARDINE_PYTHON ?? join(repoRoot, ".venv", "bin", "python")
  if (!existsSync(python)) {
    throw new Error(`no Python with the reference libraries at ${python}: run tools/setup-reference-env.sh (or set SARDINE_PYTHON)`)
  }
  return python
}
