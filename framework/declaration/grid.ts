import { Schema } from "effect"
import type { Experiment } from "./experiment.ts"

type ExperimentEncoded = typeof Experiment.Encoded

/** A grid that cannot be expanded; each issue names the axis and the rule. */
export class GridDeclarationError extends Schema.TaggedError<GridDeclarationError>()("GridDeclarationError", {
  issues: Schema.Array(Schema.String)
}) {
  override get message() {
    return `invalid grid:\n  ${this.issues.join("\n  ")}`
  }
}

/** Names a value of a grid axis in an experiment name: `full`, `lora-r4`, `0.0001`. */
const valueLabel = (value: unknown): string => {
  if (value !== null && typeof value === "object" && "_tag" in value) {
    const tagged = value as { _tag: string; rank?: number }
    return tagged._tag === "lora" && tagged.rank !== undefined ? `lora-r${tagged.rank}` : tagged._tag
  }
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return String(value)
  return JSON.stringify(value)
}

const slug = (text: string): string => text.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "")

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value)

/** `target` with `value` at `path`; the folders on the way are created when absent. */
const withPath = (target: Record<string, unknown>, path: ReadonlyArray<string>, value: unknown): Record<string, unknown> => {
  const [head, ...rest] = path
  if (head === undefined) return target
  if (rest.length === 0) return { ...target, [head]: value }
  const inner = target[head]
  return { ...target, [head]: withPath(isRecord(inner) ? inner : {}, rest, value) }
}

/** Why an axis cannot be set on `base`, if it cannot. */
const axisProblem = (base: Record<string, unknown>, path: string, values: ReadonlyArray<unknown>): string | undefined => {
  if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(path)) return `axis "${path}": must be a dot path into the experiment, such as "components.unet"`
  if (path === "name") return `axis "name": the grid names each combination itself (pass options.name to choose the names)`
  if (values.length === 0) return `axis "${path}": has no values`
  const segments = path.split(".")
  let here: unknown = base
  for (const [i, segment] of segments.slice(0, -1).entries()) {
    here = isRecord(here) ? here[segment] : undefined
    if (here !== undefined && !isRecord(here)) {
      return `axis "${path}": ${segments.slice(0, i + 1).join(".")} is ${JSON.stringify(here)} in the base, not an object to set ${
        segments.slice(i + 1).join(".")
      } in`
    }
  }
  return undefined
}

export interface GridOptions {
  /** Experiment name of one combination; default `<base>-<axis>-<value>-…` (axis = last path segment). */
  readonly name?: (choice: ReadonlyArray<{ readonly path: string; readonly value: unknown }>) => string
}

/**
 * Expands `base` over every combination of the axes' values (the first axis varies slowest), each
 * axis a dot path into the declaration: `grid(base, { "components.unet": [full({ lr }), lora({ rank: 4, lr })] })`.
 * A grid that cannot be expanded — a malformed path, an axis without values, a path through a value
 * that is not an object, two combinations with the same name — throws GridDeclarationError where it
 * is written, naming every problem.
 */
export const grid = (
  base: ExperimentEncoded,
  axes: Readonly<Record<string, ReadonlyArray<unknown>>>,
  options: GridOptions = {}
): ReadonlyArray<ExperimentEncoded> => {
  const entries = Object.entries(axes)
  const start = base as unknown as Record<string, unknown>
  const problems = entries.length === 0
    ? ["needs at least one axis: { \"dot.path\": [values…] }"]
    : entries.flatMap(([path, values]) => axisProblem(start, path, values) ?? [])
  if (problems.length > 0) throw new GridDeclarationError({ issues: problems })

  let combinations: ReadonlyArray<ReadonlyArray<{ path: string; value: unknown }>> = [[]]
  for (const [path, values] of entries) {
    combinations = combinations.flatMap((combo) => values.map((value) => [...combo, { path, value }]))
  }
  const expanded = combinations.map((choice) => {
    let experiment = start
    for (const { path, value } of choice) experiment = withPath(experiment, path.split("."), value)
    const name = options.name?.(choice) ??
      [base.name, ...choice.map(({ path, value }) => `${path.split(".").at(-1)}-${valueLabel(value)}`)].map(slug).join("-")
    return { ...experiment, name } as unknown as ExperimentEncoded
  })
  const names = expanded.map((e) => e.name)
  const twice = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))]
  if (twice.length > 0) {
    throw new GridDeclarationError({
      issues: twice.map((n) => `two combinations are both named "${n}": pass options.name to name each combination`)
    })
  }
  return expanded
}
