import { Command } from "@effect/cli"
import { cleanCommand } from "./clean.ts"
import { compareCommand } from "./compare.ts"
import { dataCommand } from "./data-inspect.ts"
import { engineCommand } from "./engine.ts"
import { evaluateCommand } from "./evaluate.ts"
import { exportCommand } from "./export.ts"
import { generateCommand } from "./generate.ts"
import { mlflowCommand } from "./mlflow-push.ts"
import { planCommand } from "./plan.ts"
import { reportCommand } from "./report.ts"
import { runCommand } from "./run.ts"
import { showCommand } from "./show.ts"
import { statsCommand } from "./stats.ts"
import { statusCommand } from "./status.ts"
import { stepCommand } from "./step.ts"
import { stepWorkerCommand } from "./step-worker.ts"
import { synthCommand } from "./synth.ts"
import { tokenizerCommand } from "./tokenizer.ts"
import { validateCommand } from "./validate.ts"
import { verifyCommand } from "./verify.ts"
import { weightsCommand } from "./weights.ts"

/** Every `sardine` command; each lives in its own file next to this one. */
export const sardine = Command.make("sardine").pipe(
  Command.withDescription("Declare, run and compare ways to fine-tune latent diffusion models into SAR generators."),
  Command.withSubcommands([
    validateCommand,
    showCommand,
    planCommand,
    runCommand,
    stepCommand,
    stepWorkerCommand,
    statusCommand,
    generateCommand,
    evaluateCommand,
    verifyCommand,
    cleanCommand,
    reportCommand,
    statsCommand,
    compareCommand,
    dataCommand,
    synthCommand,
    weightsCommand,
    exportCommand,
    mlflowCommand,
    tokenizerCommand,
    engineCommand
  ])
)
