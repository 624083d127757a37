/** The real `sardine` command line with the tracking file steps (tracked-steps.ts) in place of the engine. */
import { runCli } from "../../bin/run-cli.ts"
import { trackedStepsLayer } from "./tracked-steps.ts"

runCli(trackedStepsLayer)
