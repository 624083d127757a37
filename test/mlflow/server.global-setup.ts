import { execFile } from "node:child_process"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import type { TestProject } from "vitest/node"

/*
 * Gives the MLflow tests a place to coordinate one shared server. It starts nothing itself: the first MLflow
 * test file that needs a server starts it (test/mlflow/mlflow-server.ts), so runs of other folders pay
 * nothing. At the end it stops whatever server was started there.
 */

declare module "vitest" {
  export interface ProvidedContext {
    mlflowStateDir: string
  }
}

const repo = resolve(import.meta.dirname, "../..")

export default async function setup(project: TestProject) {
  const stateDir = await mkdtemp(join(tmpdir(), "sardine-mlflow-tests-"))
  project.provide("mlflowStateDir", stateDir)
  return async () => {
    const sharedDir = join(stateDir, "shared")
    const pidFiles = (await readdir(sharedDir).catch(() => [] as Array<string>)).filter((f) => /^server-\d+\.pid$/.test(f))
    for (const pidFile of pidFiles) {
      const port = /\d+/.exec(pidFile)![0]
      await promisify(execFile)("bash", [join(repo, ".ci/mlflow-server.sh"), "stop", sharedDir, port])
    }
    await rm(stateDir, { recursive: true, force: true })
  }
}
