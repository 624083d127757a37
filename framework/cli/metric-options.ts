import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect } from "effect"
import { SarUnit } from "../sar/units.ts"

/** Options shared by the metric commands (`stats`, `compare`). */

export const unitOption = Options.choice("unit", SarUnit.literals).pipe(
  Options.withDefault("amplitude" as SarUnit),
  Options.withDescription("What the pixel values are: linear amplitude, intensity (A²) or dB (10·log10 I)")
)

export const bandOption = Options.integer("band").pipe(
  Options.optional,
  Options.withDescription(
    "Zero-based band of a multi-band file. Without it, a file whose colour bands are all equal (grey saved as RGB) is read as grey; other multi-band files need --band"
  )
)

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text"))

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** Keeps an option's value when `rule` accepts it; otherwise a usage error (exit 2) stating the rule. */
export const requiring = <A>(rule: (a: A) => boolean, message: (a: A) => string) => (options: Options.Options<A>) =>
  Options.mapEffect(options, (a) => (rule(a) ? Effect.succeed(a) : invalid(message(a))))

export const levelsOption = Options.integer("levels").pipe(
  Options.withDefault(64),
  requiring((levels) => levels >= 1 && levels <= 65536, (levels) => `--levels must be in [1, 65536], got ${levels}`),
  Options.withDescription("Grey levels L of the GLCM: q = min(L − 1, floor(v·L))")
)

/** A comma-separated list of finite numbers, each accepted by `rule`. */
const numberList = (name: string, fallback: string, rule: (x: number) => boolean, ruleText: string, description: string) =>
  Options.text(name).pipe(
    Options.withDefault(fallback),
    Options.mapEffect((text) => {
      const items = text.split(",").map((s) => s.trim())
      const values = items.map(Number)
      const bad = items.findIndex((s, k) => s === "" || !Number.isFinite(values[k]) || !rule(values[k]!))
      return bad === -1 ? Effect.succeed(values) : invalid(`--${name}: "${items[bad]}" is not ${ruleText} (in "${text}")`)
    }),
    Options.withDescription(description)
  )

export const distancesOption = numberList(
  "distances",
  "1",
  (x) => x > 0,
  "a positive number",
  "GLCM pixel-pair distances, comma-separated"
)

export const anglesOption = numberList(
  "angles",
  "0,45,90,135",
  () => true,
  "a number",
  "GLCM angles in degrees, comma-separated (0 = right neighbour, 90 = the pixel below, as scikit-image)"
)
