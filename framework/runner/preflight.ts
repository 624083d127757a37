import { Effect, Option, Schema } from "effect"
import { statIfPresent } from "../files/if-present.ts"
import { declaredFolders } from "../plan/declared-folders.ts"
import type { Step } from "../plan/step.ts"

export class MissingInputs extends Schema.TaggedError<MissingInputs>()("MissingInputs", {
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return `declared inputs are missing, nothing was run:\n  ${this.problems.join("\n  ")}`
  }
}

/**
 * Checks, before anything runs, that every folder the steps to run will read exists, so a
 * missing model or dataset is reported at once with its path rather than hours into a study.
 */
export const checkDeclaredFolders = (steps: ReadonlyArray<Step>, resolvePath: (path: string) => string) =>
  Effect.gen(function*() {
    const seen = new Map<string, string>()
    for (const step of steps) {
      for (const { field, path } of declaredFolders(step)) {
        if (!seen.has(path)) seen.set(path, `${step.id}: ${field}`)
      }
    }
    const problems: Array<string> = []
    for (const [path, where] of seen) {
      const absolute = resolvePath(path)
      const found = yield* statIfPresent(absolute).pipe(Effect.either)
      if (found._tag === "Left") problems.push(`${where} "${path}": ${absolute} cannot be inspected: ${found.left.message}`)
      else if (Option.isNone(found.right)) problems.push(`${where} "${path}": folder ${absolute} does not exist`)
      else if (found.right.value.type !== "Directory") problems.push(`${where} "${path}": ${absolute} is not a folder`)
    }
    if (problems.length > 0) return yield* Effect.fail(new MissingInputs({ problems }))
  })
