import type { Experiment } from "./experiment.ts"

type ExperimentEncoded = typeof Experiment.Encoded

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

const withPath = (target: Record<string, unknown>, path: ReadonlyArray<string>, value: unknown): Record<string, unknown> => {
  const [head, ...rest] = path
  if (rest.length === 0) return { ...target, [head]: value }
  const inner = target[head]
  const child = inner !== null && typeof inner === "object" && !Array.isArray(inner) ? inner as Record<string, unknown> : {}
  return { ...target, [head]: withPath(child, rest, value) }
}

export interface GridOptions {
  /** Experiment name of one combination; default `<base>-<axis>-<value>-…` (axis = last path segment). */
  readonly name?: (choice: ReadonlyArray<{ readonly path: string; readonly value: unknown }>) => string
}

/**
 * Expands `base` over every combination of the axes' values, each axis a dot path into the
 * declaration: `grid(base, { "components.unet": [full({ lr }), lora({ rank: 4, lr })] })`.
 */
export const grid = (
  base: ExperimentEncoded,
  axes: Readonly<Record<string, ReadonlyArray<unknown>>>,
  options: GridOptions = {}
): ReadonlyArray<ExperimentEncoded> => {
  const entries = Object.entries(axes)
  let combinations: ReadonlyArray<ReadonlyArray<{ path: string; value: unknown }>> = [[]]
  for (const [path, values] of entries) {
    combinations = combinations.flatMap((combo) => values.map((value) => [...combo, { path, value }]))
  }
  return combinations.map((choice) => {
    let experiment = base as unknown as Record<string, unknown>
    for (const { path, value } of choice) experiment = withPath(experiment, path.split("."), value)
    const name = options.name?.(choice) ??
      [base.name, ...choice.map(({ path, value }) => `${path.split(".").at(-1)}-${valueLabel(value)}`)].map(slug).join("-")
    return { ...experiment, name } as unknown as ExperimentEncoded
  })
}
