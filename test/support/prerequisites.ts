import { existsSync } from "node:fs"
import { join } from "node:path"

/*
 * What some tests need from the machine beyond `npm ci`. `npm test` (.ci/prerequisites.sh) installs
 * each one when it can — apt packages as root or with sudo, the Python venvs with pip — and, for one
 * it cannot install, prints one line and passes it on as SARDINE_MISSING_<NAME>. A test that needs a
 * missing prerequisite fails with that line: never a skip, never a wall of unrelated errors.
 */

export type Prerequisite = "chromium" | "slurm" | "mlflow" | "reference-python"

/** A prerequisite this machine lacks; the message is the one line that says what and how to get it. */
export class PrerequisiteMissing extends Error {
  override readonly name = "PrerequisiteMissing"
}

const envName = (name: Prerequisite) => `SARDINE_MISSING_${name.toUpperCase().replace(/-/g, "_")}`

const installedAny = (dirs: ReadonlyArray<string>, program: string) => dirs.some((dir) => existsSync(join(dir, program)))

/** The programs the SLURM tests' one-node cluster runs (.ci/slurm.sh). */
const slurmPrograms = ["slurmctld", "slurmd", "slurmdbd", "sbatch", "munged", "mariadbd", "sshd"]

const howToInstall = "`npm test` installs it when run as root or with passwordless sudo"

/** Why `name` is not usable here, or undefined when it is. */
const missing = (name: Prerequisite, path: string | undefined): string | undefined => {
  const told = process.env[envName(name)]
  if (told !== undefined && told !== "") return told
  switch (name) {
    case "chromium":
      return existsSync("/usr/bin/chromium")
        ? undefined
        : `chromium is not installed (/usr/bin/chromium), which the report tests drive: ${howToInstall} (apt package chromium)`
    case "slurm": {
      const absent = slurmPrograms.filter((p) => !installedAny(["/usr/sbin", "/usr/bin"], p))
      return absent.length === 0
        ? undefined
        : `SLURM is not installed (${
          absent.join(", ")
        } missing), which the cluster tests run: ${howToInstall} (apt packages slurm-wlm slurmdbd munge mariadb-server openssh-server openssh-client)`
    }
    case "mlflow":
    case "reference-python":
      return path === undefined || existsSync(path)
        ? undefined
        : `no ${name === "mlflow" ? "MLflow venv" : "Python with the reference libraries (tools/requirements.txt)"} at ${path}: ${
          name === "mlflow"
            ? "`npm test` creates it (.ci/mlflow-server.sh install)"
            : "`npm test` creates it (tools/setup-reference-env.sh), or set SARDINE_PYTHON"
        }`
  }
}

/**
 * Throws PrerequisiteMissing when `name` is not usable on this machine. `path`: the file that must
 * exist for the venv prerequisites (their interpreter or program).
 */
export const requirePrerequisite = (name: Prerequisite, path?: string): void => {
  const why = missing(name, path)
  if (why !== undefined) throw new PrerequisiteMissing(why)
}
