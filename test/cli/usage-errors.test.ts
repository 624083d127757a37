import { CliConfig, CommandDescriptor } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { sardine as sardineCommand } from "../../framework/cli/sardine.ts"
import { type CommandShape, commandShape, usageErrorLines } from "../../framework/cli/usage-errors.ts"

const root = commandShape(sardineCommand.descriptor)

/** Every command of the tree, parents and leaves. */
const allCommands = (shape: CommandShape): ReadonlyArray<CommandShape> => [shape, ...shape.subcommands.flatMap(allCommands)]
const leaves = allCommands(root).filter((c) => c.subcommands.length === 0)
const parents = allCommands(root).filter((c) => c.subcommands.length > 0)

/** What sardine prints for these arguments when @effect/cli refuses them, as bin/run-cli.ts does. */
const messageFor = async (args: ReadonlyArray<string>): Promise<ReadonlyArray<string>> => {
  const parsed = await Effect.runPromise(
    Effect.either(CommandDescriptor.parse(sardineCommand.descriptor, ["sardine", ...args], CliConfig.defaultConfig)).pipe(Effect.provide(NodeContext.layer))
  )
  if (Either.isLeft(parsed)) return usageErrorLines(root, args, { _tag: "Invalid", error: parsed.left })
  if (parsed.right._tag === "UserDefined" && parsed.right.leftover.length > 0) {
    return usageErrorLines(root, args, { _tag: "Leftover", leftover: parsed.right.leftover })
  }
  throw new Error(`sardine ${args.join(" ")} parses`)
}

/** Two letters swapped in the middle of an option's long name: `--size` → `--szie`. */
const typo = (name: string) => {
  const i = Math.floor(name.length / 2)
  return `${name.slice(0, i)}${name[i + 1]}${name[i]}${name.slice(i + 2)}`
}

describe("usage errors: what is wrong, the nearest valid name, where the help is", () => {
  it("the command tree is read whole: nested commands and their options", () => {
    expect(root.subcommands.map((c) => c.path.at(-1))).toContain("synth")
    expect(parents.map((c) => c.path.join(" "))).toEqual(expect.arrayContaining(["sardine", "sardine data", "sardine mlflow", "sardine tokenizer"]))
    const synth = leaves.find((c) => c.path.join(" ") === "sardine synth")!
    expect(synth.options).toContainEqual({ names: ["-n", "--count"], takesValue: true })
    expect(synth.options).toContainEqual({ names: ["--look-direction"], takesValue: true, choices: ["right", "left", "down", "up"] })
  })

  it("every command: an option it does not know is named, with its help", async () => {
    for (const command of leaves) {
      const args = [...command.path.slice(1), "--no-such-option-anywhere"]
      const name = command.path.join(" ")
      expect(await messageFor(args), name).toEqual([
        `${name}: unknown option '--no-such-option-anywhere'`,
        `Run '${name} --help' for its options.`
      ])
    }
  })

  it("every command: a mistyped long option is answered with the option meant", async () => {
    for (const command of leaves) {
      const option = command.options.flatMap((o) => o.names).find((n) => n.startsWith("--") && n.length >= 6)
      if (option === undefined) continue
      const lines = await messageFor([...command.path.slice(1), typo(option)])
      expect(lines[0], command.path.join(" ")).toMatch(
        new RegExp(`^${command.path.join(" ")}: unknown option '${typo(option)}' \\(did you mean .*'${option}'.*\\?\\)$`)
      )
      expect(lines).toHaveLength(2)
    }
  })

  it("every command with subcommands: an unknown one gets the nearest, or the list", async () => {
    for (const parent of parents) {
      const child = parent.subcommands[0]!.path.at(-1)!
      const name = parent.path.join(" ")
      expect(await messageFor([...parent.path.slice(1), `${child}x`]), name).toEqual([
        `${name}: unknown command '${child}x' (did you mean '${child}'?)`,
        `Run '${name} --help' for its commands.`
      ])
      const names = parent.subcommands.map((s) => s.path.at(-1)).join(", ")
      expect((await messageFor([...parent.path.slice(1), "zzzzzzzz"]))[0]).toBe(`${name}: unknown command 'zzzzzzzz'; one of ${names}`)
    }
  })

  it("values: a choice out of range names the option and the nearest choice; a malformed number names its option", async () => {
    expect(await messageFor(["run", "study.ts", "--executor", "slurmm"])).toEqual([
      "sardine run: --executor: 'slurmm' is not one of local, processes, slurm (did you mean 'slurm'?)",
      "Run 'sardine run --help' for its options."
    ])
    expect((await messageFor(["synth", "--out", "d", "--count", "x"]))[0]).toBe("sardine synth: --count: 'x' is not an integer")
    expect((await messageFor(["synth", "--out", "d", "-n", "2", "extra"]))[0]).toBe("sardine synth: unexpected argument 'extra'")
    expect(await messageFor(["export"])).toEqual([
      "sardine export: missing option '--format'",
      "sardine export: missing option '--out'",
      "Run 'sardine export --help' for its options."
    ])
  })
})
