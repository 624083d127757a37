import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { dirname, extname, resolve, sep } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { DeclarationError, decodeDeclaration } from "./decode.ts"
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

/** The sardine this process runs: what a declaration outside a project is told to install. */
const sardineRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/[\\/]$/, "")

/**
 * `file:line:col`, the source line and a caret under the column, for a compile error. The line only
 * illustrates the error being reported: a file that cannot be read again shows the position alone.
 */
const compileErrorAt = (file: string, line: number, column: number, text: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.map((content): string | undefined => content.split(/\r?\n/)[line - 1]),
    Effect.orElseSucceed(() => undefined),
    Effect.map((source) => {
      const at = `${file}:${line}:${column + 1}: ${text}`
      return source === undefined ? at : `${at}\n    ${source}\n    ${" ".repeat(column)}^`
    })
  )

/** esbuild's "Transform failed with N errors:" lines, `file:line:col: ERROR: text`, without its own stack. */
const syntaxErrors = (e: Error): Effect.Effect<string | undefined, never, FileSystem.FileSystem> => {
  if (e.name !== "TransformError" && !e.message.startsWith("Transform failed")) return Effect.succeed(undefined)
  const errors = [...e.message.matchAll(/^(.+):(\d+):(\d+): ERROR: (.*)$/gm)]
  if (errors.length === 0) return Effect.succeed(undefined)
  return Effect.map(
    Effect.forEach(errors, ([, file = "", line = "", column = "", text = ""]) => compileErrorAt(file, Number(line), Number(column), text)),
    (lines) => `cannot be compiled:\n  ${lines.join("\n  ")}`
  )
}

/** Node's "Cannot find module/package 'x'": which import, and for sardine itself how to make it found. */
const missingModule = (file: string, e: Error): string | undefined => {
  const code = (e as { code?: unknown }).code
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return undefined
  const specifier = /Cannot find (?:module|package) '([^']+)'/.exec(e.message)?.[1]
  if (specifier === undefined) return e.message.split("\n")[0]
  // ESM says "imported from <file>", CommonJS lists a "Require stack" whose first entry imported it.
  const importer = /imported from (\S+)/.exec(e.message)?.[1] ?? /Require stack:\n- (.+)/.exec(e.message)?.[1] ?? file
  if (specifier === "sardine" || specifier.startsWith("sardine/")) {
    const folder = dirname(importer)
    return [
      `${importer === file ? "imports" : `${importer} imports`} "sardine", which is not installed in ${folder} or a folder above it.`,
      `  Install this sardine next to the declaration:  cd ${folder} && npm install ${sardineRoot}`,
      `  or keep the declaration inside the sardine clone (e.g. ${sardineRoot}${sep}experiments${sep}), where "sardine" is always found.`
    ].join("\n")
  }
  return `cannot import "${specifier}" (imported by ${importer}): no such file, or a package not installed there`
}

/** Stack frames in the user's own files: not Node's, not a package's, not sardine's framework. */
const userFrames = (e: Error): ReadonlyArray<string> =>
  (e.stack ?? "").split("\n").filter((line) =>
    /^\s+at /.test(line) && !line.includes("node:") && !line.includes(`${sep}node_modules${sep}`) &&
    !line.includes(`${sardineRoot}${sep}framework${sep}`)
  )

/** The errors of builders that check their arguments where the declaration calls them. */
const builderErrors = new Set(["DatasetDeclarationError", "GridDeclarationError"])

/**
 * Why importing a declaration failed, without the module loader's stack: a compile error with
 * its line, a missing import with what to install, a builder that refused its arguments
 * (`synthetic({ n: 0 })`, a grid axis without values) with its rule and the declaration's line that
 * called it, anything else with its message and the frames in the user's files.
 */
const loadFailure = (file: string, e: unknown): Effect.Effect<string, never, FileSystem.FileSystem> =>
  e instanceof Error
    ? Effect.map(syntaxErrors(e), (syntax) => syntax ?? otherFailure(file, e))
    : Effect.succeed(`failed to load the module: ${String(e)}`)

const otherFailure = (file: string, e: Error): string => {
  const known = missingModule(file, e)
  if (known !== undefined) return known
  const caller = e.stack?.split("\n").find((line) => line.includes(resolve(file)))
  if (builderErrors.has(String((e as { _tag?: unknown })._tag)) && caller !== undefined) {
    const at = /([^\s(]+:\d+:\d+)\)?\s*$/.exec(caller)?.[1] ?? caller.trim()
    return `${e.message}\n  (called at ${at})`
  }
  return [`failed to load the module: ${e.name}: ${e.message}`, ...userFrames(e)].join("\n")
}

const readSource = (file: string): Effect.Effect<unknown, DeclarationLoadError, FileSystem.FileSystem> => {
  const extension = extname(file)
  if (extension === ".json") {
    return Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
      Effect.mapError((e) => new DeclarationLoadError({ file, reason: `cannot read: ${e.message}` })),
      Effect.flatMap((text) =>
        Effect.try({
          try: () => JSON.parse(text) as unknown,
          catch: (e) => new DeclarationLoadError({ file, reason: `not valid JSON: ${(e as Error).message}` })
        })
      )
    )
  }
  if (moduleExtensions.has(extension)) {
    return Effect.tryPromise({ try: () => import(pathToFileURL(file).href) as Promise<{ default?: unknown }>, catch: (e) => e }).pipe(
      Effect.catchAll((e) => Effect.flatMap(loadFailure(file, e), (reason) => Effect.fail(new DeclarationLoadError({ file, reason })))),
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
export const loadDeclaration = (path: string): Effect.Effect<LoadedDeclaration, DeclarationLoadError | DeclarationError, FileSystem.FileSystem> => {
  const file = resolve(path)
  return readSource(file).pipe(
    Effect.mapError((error) => new DeclarationLoadError({ file: path, reason: error.reason })),
    Effect.flatMap((input) => decodeDeclaration(input, path)),
    Effect.map((declaration) => ({ file, directory: dirname(file), declaration }))
  )
}
