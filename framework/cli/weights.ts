import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { Weights, type WeightsListing } from "../services/weights.ts"

const checkpoint = Args.path({ name: "checkpoint", exists: "yes" }).pipe(
  Args.withDescription("A .safetensors file, a model folder (e.g. unet/), a diffusers pipeline folder, or an architecture folder (counted from its configs)")
)

const json = Options.boolean("json").pipe(Options.withDescription("Print the listing as JSON"))

const count = (n: number) => n.toLocaleString("en-US")

/** "2.57 G" beside large counts, as model sizes are quoted. */
const magnitude = (n: number) => (n >= 1e9 ? ` (${(n / 1e9).toFixed(2)} G)` : n >= 1e6 ? ` (${(n / 1e6).toFixed(2)} M)` : "")

/** One block per component: its class, files and parameter count, then every tensor. */
export const formatListing = (listing: WeightsListing): string => {
  const lines: Array<string> = []
  for (const c of listing.components) {
    const where = c.source === "config" ? `from ${c.files.join(", ")} (no weights: the model its config builds)` : `in ${c.files.join(", ")}`
    lines.push(`${c.name}${c.className === undefined ? "" : ` (${c.className})`}: ${count(c.parameters)} parameters${magnitude(c.parameters)} ${where}`)
    const width = Math.max(...c.tensors.map((t) => t.name.length))
    for (const t of c.tensors) lines.push(`  ${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(", ")}]`)
  }
  lines.push(`total: ${count(listing.parameters)} parameters${magnitude(listing.parameters)}`)
  return `${lines.join("\n")}\n`
}

export const weightsCommand = Command.make("weights", { checkpoint, json }, ({ checkpoint, json }) =>
  Effect.gen(function*() {
    const listing = yield* (yield* Weights).list(checkpoint)
    yield* Effect.sync(() => process.stdout.write(json ? `${JSON.stringify(listing, null, 2)}\n` : formatListing(listing)))
  })).pipe(
    Command.withDescription(
      "List every tensor of a checkpoint (name, dtype, shape) and the parameter count of each component; reads headers only."
    )
  )
