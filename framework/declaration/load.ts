import { Effect, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { dirname, extname, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { decodeDeclaration, type DeclarationError } from "./decode.ts"
import type { Declaration } from "./experiment.ts"

export class DeclarationLoadError extends Schema.TaggedError<DeclarationLoadError>()("DeclarationLoadError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/** A validated declaration and where it came from: relative paths inside it are relative to `directory`. */
export interface LoadedDeclaration {
  readonly file: string
  readonly directory: string
  readonly declaration: Declaration
}

const moduleExtensions = new Set([".ts", ".mts", ".js", ".mjs"])

/** The errors of builders that check their arguments where the declaration calls them. */
const builderErrors = new Set(["DatasetDeclarationError", "GridDeclarationError"])

/**
 * Why importing a declaration failed. A builder that refused its arguments (`synthetic({ n: 0 })`, a grid
 * axis without values) gets its rule and the line of the declaration that called it; anything else keeps
 * its whole stack.
 */
const loadFailure = (file: string, e: unknown): string => {
  if (!(e instanceof Error)) return `failed to load the module: ${String(e)}`
  const caller = e.stack?.split("\n").find((line) => line.includes(resolve(file)))
  if (builderErrors.has(String((e as { _tag?: unknown })._tag)) && caller !== undefined) {
    const at = /([^\s(]+:\d+:\d+)\)?\s*$/.exec(caller)?.[1] ?? caller.trim()
    return `${e.message}\n  (called at ${at})`
  }
  return `failed to load the module: ${e.stack ?? e.message}`
}

const readSource = (file: string): Effect.Effect<unknown, DeclarationLoadError> => {
  const extension = extname(file)
  if (extension === ".json") {
    return Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => new DeclarationLoadError({ file, reason: `cannot read: ${(e as Error).message}` })
    }).pipe(
      Effect.flatMap((text) =>
        Effect.try({
          try: () => JSON.parse(text) as unknown,
          catch: (e) => new DeclarationLoadError({ file, reason: `not valid JSON: ${(e as Error).message}` })
        })
      )
    )
  }
  if (moduleExtensions.has(extension)) {
    return Effect.tryPromise({
      try: () => import(pathToFileURL(file).href) as Promise<{ default?: unknown }>,
      catch: (e) => new DeclarationLoadError({ file, reason: loadFailure(file, e) })
    }).pipe(
      Effect.flatMap((module) =>
        module.default === undefined
          ? Effect.fail(new DeclarationLoadError({ file, reason: "has no default export (export default experiment(…) or study(…))" }))
          : Effect.succeed(module.default)
      )
    )
  }
  return Effect.fail(new DeclarationLoadError({ file, reason: `unsupported extension "${extension}" (use .ts, .js or .json)` }))
}

/** Loads a declaration from a TS/JS module (default export) or its JSON form; both validate the same way. */
export const loadDeclaration = (path: string): Effect.Effect<LoadedDeclaration, DeclarationLoadError | DeclarationError> => {
  const file = resolve(path)
  return readSource(file).pipe(
    Effect.mapError((error) => new DeclarationLoadError({ file: path, reason: error.reason })),
    Effect.flatMap((input) => decodeDeclaration(input, path)),
    Effect.map((declaration) => ({ file, directory: dirname(file), declaration }))
  )
}
