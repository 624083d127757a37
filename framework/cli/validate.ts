import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { loadDeclaration } from "../declaration/load.ts"
import { checkAgainstArchitecture } from "./architecture-check.ts"
import { declarationFile } from "./declaration-file.ts"
import { checkGpuMemory } from "./resources-plan.ts"
import { experimentsOf } from "../declaration/experiment.ts"
import { engineOption, enginePlan } from "./engine-option.ts"

export const validateCommand = Command.make("validate", { file: declarationFile, engine: engineOption }, ({ engine, file }) =>
  Effect.gen(function*() {
    const loaded = yield* loadDeclaration(file)
    yield* checkAgainstArchitecture(loaded, file)
    const { declaration } = loaded
    const { engine: chosen, plan } = yield* enginePlan(loaded, engine, { check: true })
    yield* checkGpuMemory(loaded, plan)
    const count = experimentsOf(declaration).length
    yield* Console.log(
      `${file}: valid ${declaration.kind} "${declaration.name}"${declaration.kind === "study" ? ` (${count} experiments)` : ""} on the ${chosen} engine`
    )
  })).pipe(
    Command.withDescription(
      "Check a declaration, including its only patterns and LoRA targets against the base's architecture, and that its engine can do everything it " +
        "declares; every problem is printed with its path (exit 1 if any)."
    )
  )
