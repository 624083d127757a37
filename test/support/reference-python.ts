import { join } from "node:path"
import { requirePrerequisite } from "./prerequisites.ts"
import { repoRoot } from "./run-process.ts"

/**
 * The Python interpreter with the pinned reference libraries (tools/requirements.txt: torch, diffusers,
 * transformers, peft, accelerate, …), which the tests use as the real consumer of sardine's files and
 * as the torch engine's environment: `SARDINE_PYTHON` when set, else the repository's `.venv`.
 * A missing interpreter fails the test with the line that says how to make it, never a skip.
 */
export const referencePython = (): string => {
  const python = process.env.SARDINE_PYTHON ?? join(repoRoot, ".venv", "bin", "python")
  requirePrerequisite("reference-python", python)
  return python
}
