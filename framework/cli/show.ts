import { Command } from "@effect/cli"
import { Effect } from "effect"
import { canonicalJsonPretty } from "../declaration/canonical-json.ts"
import { encodeDeclaration } from "../declaration/decode.ts"
import { loadDeclaration } from "../declaration/load.ts"
import { declarationFile } from "./declaration-file.ts"

export const showCommand = Command.make("show", { file: declarationFile }, ({ file }) =>
  loadDeclaration(file).pipe(
    Effect.flatMap(({ declaration }) => Effect.sync(() => process.stdout.write(canonicalJsonPretty(encodeDeclaration(declaration)))))
  )).pipe(
    Command.withDescription(
      "Print the canonical JSON of a declaration (every default explicit, keys sorted); it validates and shows back to the same bytes."
    )
  )
