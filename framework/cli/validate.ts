import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { loadDeclaration } from "../declaration/load.ts"
import { declarationFile } from "./declaration-file.ts"
import { experimentsOf } from "../declaration/experiment.ts"

export const validateCommand = Command.make("validate", { file: declarationFile }, ({ file }) =>
  loadDeclaration(file).pipe(
    Effect.flatMap(({ declaration }) => {
      const count = experimentsOf(declaration).length
      return Console.log(
        `${file}: valid ${declaration.kind} "${declaration.name}"${declaration.kind === "study" ? ` (${count} experiments)` : ""}`
      )
    })
  )).pipe(Command.withDescription("Check a declaration; every problem is printed with its path (exit 1 if any)."))
