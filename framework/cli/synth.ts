import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect, Option, ParseResult, Schema } from "effect"
import { SyntheticDataset } from "../declaration/dataset.ts"
import { Datasets, type SyntheticSummary } from "../services/datasets.ts"

/**
 * `sardine synth --out DIR -n N --size S --seed K [--exclude ships,…] [--looks L]
 * [--look-direction right|left|down|up] [--incidence-angle DEG]`: writes a synthetic SAR/optical
 * imagefolder, the same bytes for the same arguments.
 */

/** Declaration field → the option that sets it, for error messages. */
const optionOf: Record<string, string> = {
  n: "--count",
  size: "--size",
  seed: "--seed",
  looks: "--looks",
  exclude: "--exclude",
  lookDirection: "--look-direction",
  incidenceAngle: "--incidence-angle"
}

const usage = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

/** Validates the options as a synthetic dataset declaration; a bad value is a usage error naming the option. */
const declare = (input: Record<string, unknown>) =>
  Schema.decodeUnknown(SyntheticDataset)(input, { errors: "all" }).pipe(
    Effect.mapError((error) =>
      usage(
        ParseResult.ArrayFormatter.formatErrorSync(error)
          .map((issue) => `${optionOf[String(issue.path[0])] ?? String(issue.path[0])}: ${issue.message}`)
          .join("\n")
      )
    )
  )

export const summaryText = (s: SyntheticSummary) =>
  [
    `wrote ${s.scenes} scene${s.scenes === 1 ? "" : "s"} to ${s.folder}`,
    `  kinds    ${Object.entries(s.kinds).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `  classes  ${Object.entries(s.classes).map(([k, n]) => `${k} ${n}`).join(", ")} (scenes containing each)`
  ].join("\n")

/** The generator options, checked as a synthetic dataset declaration while the command line is parsed. */
const declaration = Options.all({
  n: Options.integer("count").pipe(
    // @effect/cli makes one-letter names short flags, so the count is `-n N` or `--count N`.
    Options.withAlias("n"),
    Options.withDescription("Number of scenes")
  ),
  size: Options.integer("size").pipe(Options.withDefault(256), Options.withDescription("Scene side in pixels (1 m each)")),
  seed: Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("Seed: same seed, same bytes")),
  looks: Options.integer("looks").pipe(Options.withDefault(1), Options.withDescription("Number of looks L of the speckle")),
  exclude: Options.text("exclude").pipe(
    Options.optional,
    Options.withDescription("Comma-separated classes to withhold: water, bare-field, crops, forest, urban, roads, bridges, ships")
  ),
  lookDirection: Options.choice("look-direction", ["right", "left", "down", "up"]).pipe(
    Options.withDefault("right" as const),
    Options.withDescription("Direction the radar beam travels across the image; the sensor is on the opposite side")
  ),
  incidenceAngle: Options.float("incidence-angle").pipe(
    Options.withDefault(35),
    Options.withDescription("Incidence angle in degrees (layover h·cot θ, shadow h·tan θ)")
  )
}).pipe(
  Options.mapEffect(({ exclude, ...rest }) =>
    declare({
      _tag: "synthetic",
      ...rest,
      exclude: Option.match(exclude, {
        onNone: () => [],
        onSome: (text) => text.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
      })
    })
  )
)

export const synthCommand = Command.make(
  "synth",
  {
    out: Options.directory("out").pipe(Options.withDescription("Folder to create (must not exist, or be empty)")),
    dataset: declaration,
    json: Options.boolean("json").pipe(Options.withDescription("Print the summary as JSON"))
  },
  ({ dataset, json, out }) =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const summary = yield* datasets.writeSynthetic(dataset, out)
      yield* Console.log(json ? JSON.stringify(summary, null, 2) : summaryText(summary))
    })
).pipe(
  Command.withDescription(
    "Write a synthetic SAR/optical imagefolder: SAR amplitude (float32 TIFF + PNG preview), label map, optical-like RGB and a caption per scene in metadata.jsonl; deterministic for a seed."
  )
)
