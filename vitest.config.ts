import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests start real processes and servers; two cores do not profit from more parallel files.
    maxWorkers: 2,
    minWorkers: 1
  }
})
