import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Coordinates the real MLflow server of test/mlflow; starts nothing unless an MLflow test asks.
    globalSetup: ["test/mlflow/server.global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests start real processes and servers; two cores do not profit from more parallel files.
    maxWorkers: 2,
    minWorkers: 1
  }
})
