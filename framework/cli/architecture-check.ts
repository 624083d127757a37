import { Console, Effect } from "effect"
import { architectureIssues } from "../declaration/architecture-rules.ts"
import { DeclarationError } from "../declaration/decode.ts"
import type { LoadedDeclaration } from "../declaration/load.ts"

/**
 * The plan-time architecture rules of a loaded declaration (`sardine validate`, `plan`, `run`): fails
 * with every problem, each with its path, as other validation problems; says on stderr which bases it
 * could not read (and so did not check).
 */
export const checkAgainstArchitecture = (loaded: LoadedDeclaration, file: string) =>
  Effect.gen(function*() {
    const { issues, unchecked } = yield* architectureIssues(loaded)
    if (issues.length > 0) return yield* new DeclarationError({ source: file, issues })
    for (const { folder, why } of unchecked) {
      yield* Console.error(`note: only and LoRA targets not checked against the architecture of ${folder}: ${unreadableReason(folder, why)}`)
    }
  })

/** Why a base folder cannot be read: the environment variables its path names that are unset, else `why`. */
export const unreadableReason = (folder: string, why: string): string => {
  // A path still holding `$NAME` comes from an environment variable the declaration reads, unset here.
  const unset = [...folder.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1])
  return unset.length > 0 ? `${unset.join(", ")} ${unset.length > 1 ? "are" : "is"} not set` : why
}
