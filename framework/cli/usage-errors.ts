import { CommandDescriptor, HelpDoc, type ValidationError } from "@effect/cli"

/**
 * Usage errors in two or three lines — what is wrong, the nearest valid name, where the help is —
 * for every command, instead of @effect/cli's bare "Expected to find option: '--count'" (which,
 * for a mistyped `--n`, blames the option the user did mean to give).
 */

/** What a command accepts, read from its descriptor. */
export interface CommandShape {
  /** From the program down: ["sardine", "data", "inspect"]. */
  readonly path: ReadonlyArray<string>
  /** Each option's names (aliases together, e.g. ["-n", "--count"]) and whether it takes a value. */
  readonly options: ReadonlyArray<{ readonly names: ReadonlyArray<string>; readonly takesValue: boolean; readonly choices?: ReadonlyArray<string> }>
  readonly subcommands: ReadonlyArray<CommandShape>
}

/** The options every command has (@effect/cli's built-in ones). */
const builtIn: CommandShape["options"] = [
  { names: ["-h", "--help"], takesValue: false },
  { names: ["--version"], takesValue: false },
  { names: ["--wizard"], takesValue: false },
  { names: ["--completions"], takesValue: true, choices: ["sh", "bash", "fish", "zsh"] },
  { names: ["--log-level"], takesValue: true }
]

/*
 * @effect/cli's descriptors are a tree of Standard (a command with options and arguments), Map (a
 * transformed command) and Subcommands (a parent with children) nodes; the public API lists only one
 * level of it, so the shape is read from the nodes themselves.
 */
type Node =
  | { readonly _tag: "Standard" | "GetUserInput"; readonly name: string }
  | { readonly _tag: "Map"; readonly command: Node }
  | { readonly _tag: "Subcommands"; readonly parent: Node; readonly children: ReadonlyArray<Node> }

/** The options of a command without subcommands, from its usage. */
const optionsOf = (command: CommandDescriptor.Command<unknown>): CommandShape["options"] => {
  const found: Array<CommandShape["options"][number]> = []
  const walk = (usage: ReturnType<typeof CommandDescriptor.getUsage>): void => {
    switch (usage._tag) {
      case "Named":
        if (usage.names.every((n) => n.startsWith("-"))) {
          const accepted = usage.acceptedValues._tag === "Some" ? usage.acceptedValues.value : undefined
          const choices = accepted?.includes(" | ") ? accepted.split(" | ") : undefined
          found.push({ names: usage.names, takesValue: accepted !== undefined, ...(choices === undefined ? {} : { choices }) })
        }
        return
      case "Optional":
      case "Repeated":
        return walk(usage.usage)
      case "Concat":
      case "Alternation":
        walk(usage.left)
        return walk(usage.right)
      default:
        return
    }
  }
  walk(CommandDescriptor.getUsage(command))
  return found
}

export const commandShape = (descriptor: CommandDescriptor.Command<unknown>, parentPath: ReadonlyArray<string> = []): CommandShape => {
  const node = descriptor as unknown as Node
  switch (node._tag) {
    case "Map":
      return commandShape(node.command as unknown as CommandDescriptor.Command<unknown>, parentPath)
    case "Subcommands": {
      const parent = commandShape(node.parent as unknown as CommandDescriptor.Command<unknown>, parentPath)
      return { ...parent, subcommands: node.children.map((c) => commandShape(c as unknown as CommandDescriptor.Command<unknown>, parent.path)) }
    }
    default:
      return { path: [...parentPath, node.name], options: optionsOf(descriptor), subcommands: [] }
  }
}

/** Edit distance with transpositions (`--hepl` is one edit from `--help`), for the nearest name. */
const distance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The candidates nearest to `typed` (a prefix counts as near), or none when nothing is close. */
const nearest = <A>(typed: string, candidates: ReadonlyArray<A>, namesOf: (a: A) => ReadonlyArray<string>): ReadonlyArray<A> => {
  const bare = (s: string) => s.replace(/^-+/, "").toLowerCase()
  const scored = candidates.map((c) => {
    const d = Math.min(...namesOf(c).map((n) => (bare(n).startsWith(bare(typed)) && bare(typed).length >= 2 ? 0.5 : distance(bare(typed), bare(n)))))
    return { c, d }
  })
  const best = Math.min(...scored.map((s) => s.d))
  const tolerance = Math.max(1, Math.floor(bare(typed).length / 3))
  return best <= tolerance ? scored.filter((s) => s.d === best).map((s) => s.c) : []
}

const quoted = (names: ReadonlyArray<string>) => names.map((n) => `'${n}'`).join(" / ")

/** Where the arguments lead: the deepest command they name, and the arguments left for it. */
const resolve = (root: CommandShape, argv: ReadonlyArray<string>) => {
  let command = root
  let rest = argv
  for (;;) {
    const index = rest.findIndex((a) => !a.startsWith("-"))
    const next = index < 0 ? undefined : command.subcommands.find((s) => s.path.at(-1) === rest[index])
    if (next === undefined) return { command, rest }
    command = next
    rest = rest.slice(index + 1)
  }
}

/** Options the command does not know, each with the nearest ones it does. */
const unknownOptions = (command: CommandShape, args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const options = [...command.options, ...builtIn]
  const problems: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") break
    // A negative number is a value, not an option.
    if (!arg.startsWith("-") || /^-\d/.test(arg)) continue
    const name = arg.split("=")[0]!
    const known = options.find((o) => o.names.includes(name))
    if (known !== undefined) {
      if (known.takesValue && !arg.includes("=")) i += 1
      continue
    }
    const near = nearest(name, options, (o) => o.names)
    problems.push(`unknown option '${name}'${near.length === 0 ? "" : ` (did you mean ${near.map((o) => quoted(o.names)).join(" or ")}?)`}`)
  }
  return problems
}

/** A value outside an option's choices, with the nearest choice. */
const badChoices = (command: CommandShape, args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args.flatMap((arg, i) => {
    const [name, inline] = arg.split("=", 2) as [string, string?] // split gives at least one part
    const option = command.options.find((o) => o.names.includes(name) && o.choices !== undefined)
    const value = inline ?? args[i + 1]
    if (option === undefined || value === undefined || option.choices!.includes(value)) return []
    const near = nearest(value, option.choices!, (c) => [c])
    return [`${name}: '${value}' is not one of ${option.choices!.join(", ")}${near.length === 0 ? "" : ` (did you mean '${near[0]}'?)`}`]
  })

const plainLines = (doc: HelpDoc.HelpDoc): ReadonlyArray<string> =>
  HelpDoc.toAnsiText(doc)
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;]*m/g, "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)

/** @effect/cli's own wording, made to read as sardine's other messages. */
const reworded = (line: string): string =>
  line
    .replace(/^Expected to find option: '(.+)'$/, "missing option '$1'")
    .replace(/^Missing argument (.+)$/, "missing argument $1")
    .replace(/^Path '(.+)' must exist$/, "'$1' does not exist")
    .replace(/^'(.*)' is not a (integer)$/, "'$1' is not an $2")

/** A message about a value (`'x' is not an integer`) names the option it was given to. */
const withOption = (command: CommandShape, args: ReadonlyArray<string>) => (line: string): string => {
  const value = /^'(.*?)'/.exec(line)?.[1]
  const i = value === undefined ? -1 : args.indexOf(value)
  const option = i < 1 ? undefined : command.options.find((o) => o.takesValue && o.names.includes(args[i - 1]!))
  return option === undefined ? line : `${args[i - 1]}: ${line}`
}

/** Why the arguments were refused: a parse error of @effect/cli, or arguments left over after a valid command. */
export type UsageProblem =
  | { readonly _tag: "Invalid"; readonly error: ValidationError.ValidationError }
  | { readonly _tag: "Leftover"; readonly leftover: ReadonlyArray<string> }

/**
 * The lines to print for a usage error: what is wrong (each problem on its line, prefixed by the
 * command), with the nearest valid option, command or choice; then where the help is.
 */
export const usageErrorLines = (root: CommandShape, argv: ReadonlyArray<string>, problem: UsageProblem): ReadonlyArray<string> => {
  const { command, rest } = resolve(root, argv)
  const name = command.path.join(" ")
  const help = `Run '${name} --help' for ${command.subcommands.length > 0 ? "its commands" : "its options"}.`
  const firstWord = rest.find((a) => !a.startsWith("-"))
  if (problem._tag === "Invalid" && problem.error._tag === "CommandMismatch" && command.subcommands.length > 0) {
    const near = firstWord === undefined ? [] : nearest(firstWord, command.subcommands, (s) => [s.path.at(-1)!])
    const what = firstWord === undefined ? "missing command" : `unknown command '${firstWord}'`
    const names = command.subcommands.map((s) => s.path.at(-1)!)
    return [
      `${name}: ${what}${near.length === 0 ? `; one of ${names.join(", ")}` : ` (did you mean ${quoted(near.map((s) => s.path.at(-1)!))}?)`}`,
      help
    ]
  }
  // A mistyped option makes @effect/cli miss the one the user meant: name the cause, not the effect.
  const causes = [...unknownOptions(command, rest), ...badChoices(command, rest)]
  const lines = causes.length > 0
    ? causes
    : problem._tag === "Leftover"
    ? problem.leftover.map((a) => `unexpected argument '${a}'`)
    : plainLines(problem.error.error).map(reworded).map(withOption(command, rest))
  return [...lines.map((l) => `${name}: ${l}`), help]
}
