/** The real `sardine` command line with the file-working test steps in place of the engine. */
import { runCli } from "../../bin/run-cli.ts"
import { fileStepsLayer } from "./file-steps.ts"

runCli(fileStepsLayer)
