/**
 * The composition root: the only place that knows both the framework and the adapters.
 * It provides the real service layers to the command line.
 */
import { productionSteps } from "./production-steps.ts"
import { runCli } from "./run-cli.ts"

runCli(productionSteps)
