import { Effect } from "effect"
import { TrackingInputError } from "../services/tracker.ts"

/** MLflow's limits (mlflow/utils/validation.py), enforced before anything is sent or written. */
export const MAX_KEY_LENGTH = 250
export const MAX_PARAM_VALUE_LENGTH = 6000
export const MAX_TAG_VALUE_LENGTH = 8000
export const MAX_EXPERIMENT_NAME_LENGTH = 500
export const MAX_DATASET_NAME_LENGTH = 500
export const MAX_DATASET_DIGEST_LENGTH = 36
export const MAX_METRICS_PER_BATCH = 1000
export const MAX_PARAMS_PER_BATCH = 100
export const MAX_TAGS_PER_BATCH = 100
export const MAX_ENTITIES_PER_BATCH = 1000
export const MAX_BATCH_BODY_BYTES = 1_000_000

/**
 * ASCII subset of MLflow's rule `[/\w.\- ]` (its `\w` is Unicode; Windows excludes the colon it allows
 * elsewhere): such keys become file names in the local store, so the portable subset is the safe one.
 */
const KEY_PATTERN = /^[/A-Za-z0-9_.\- ]+$/
const KEY_RULE = `must be 1–${MAX_KEY_LENGTH} characters from letters, digits, "_", "-", ".", " " and "/"`

/** MLflow also refuses keys that a path normalisation would change ("a//b", "./a", "a/", "/a", ".."). */
const normalisesToItself = (key: string): boolean => {
  if (key.startsWith("/") || key.endsWith("/") || key.includes("//")) return false
  return key.split("/").every((part) => part !== "." && part !== "..")
}

/** Length in code points, as Python's `len` counts. */
export const codePointLength = (text: string): number => {
  let n = 0
  for (const _ of text) n++
  return n
}

export const keyProblem = (key: string): string | undefined =>
  key.length === 0 || key.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)
    ? KEY_RULE
    : !normalisesToItself(key)
    ? "must not start or end with \"/\", contain \"//\", or have \".\" or \"..\" as a path segment"
    : undefined

export const checkKey = (field: string, key: string): Effect.Effect<void, TrackingInputError> => {
  const problem = keyProblem(key)
  return problem === undefined ? Effect.void : Effect.fail(new TrackingInputError({ field, value: key, rule: problem }))
}

const checkLength = (field: string, value: string, max: number): Effect.Effect<void, TrackingInputError> =>
  codePointLength(value) <= max
    ? Effect.void
    : Effect.fail(new TrackingInputError({ field, value, rule: `must be at most ${max} characters` }))

export const checkParams = (params: Readonly<Record<string, string>>): Effect.Effect<void, TrackingInputError> =>
  Effect.forEach(
    Object.entries(params),
    ([key, value]) => Effect.zipRight(checkKey("param key", key), checkLength(`param "${key}" value`, value, MAX_PARAM_VALUE_LENGTH)),
    {
      discard: true
    }
  )

export const checkTags = (tags: Readonly<Record<string, string>>): Effect.Effect<void, TrackingInputError> =>
  Effect.forEach(
    Object.entries(tags),
    ([key, value]) => Effect.zipRight(checkKey("tag key", key), checkLength(`tag "${key}" value`, value, MAX_TAG_VALUE_LENGTH)),
    {
      discard: true
    }
  )

export const checkMetric = (
  point: { readonly key: string; readonly value: number; readonly step: number; readonly timestamp: number }
): Effect.Effect<void, TrackingInputError> =>
  Effect.zipRight(
    checkKey("metric key", point.key),
    !Number.isSafeInteger(point.step)
      ? Effect.fail(new TrackingInputError({ field: `metric "${point.key}" step`, value: String(point.step), rule: "must be an integer" }))
      : !Number.isSafeInteger(point.timestamp) || point.timestamp < 0
      ? Effect.fail(
        new TrackingInputError({
          field: `metric "${point.key}" timestamp`,
          value: String(point.timestamp),
          rule: "must be a non-negative integer (ms since the epoch)"
        })
      )
      : typeof point.value !== "number"
      ? Effect.fail(new TrackingInputError({ field: `metric "${point.key}" value`, value: String(point.value), rule: "must be a number" }))
      : Effect.void
  )

export const checkExperimentName = (name: string): Effect.Effect<void, TrackingInputError> =>
  name.trim().length === 0
    ? Effect.fail(new TrackingInputError({ field: "experiment name", value: name, rule: "must not be empty" }))
    : checkLength("experiment name", name, MAX_EXPERIMENT_NAME_LENGTH)

export const checkDataset = (
  input: { readonly name: string; readonly digest: string; readonly source: string }
): Effect.Effect<void, TrackingInputError> =>
  Effect.all([
    input.name.length === 0
      ? Effect.fail(new TrackingInputError({ field: "dataset name", value: input.name, rule: "must not be empty" }))
      : checkLength("dataset name", input.name, MAX_DATASET_NAME_LENGTH),
    input.digest.length === 0
      ? Effect.fail(new TrackingInputError({ field: `dataset "${input.name}" digest`, value: input.digest, rule: "must not be empty" }))
      : checkLength(`dataset "${input.name}" digest`, input.digest, MAX_DATASET_DIGEST_LENGTH),
    input.source.length === 0
      ? Effect.fail(new TrackingInputError({ field: `dataset "${input.name}" source`, value: input.source, rule: "must not be empty" }))
      : Effect.void
  ], { discard: true })

/** mlflow.log_image's own rule for image keys. */
export const checkImageKey = (key: string): Effect.Effect<void, TrackingInputError> =>
  /^[a-zA-Z0-9_\-./ ]+$/.test(key)
    ? Effect.void
    : Effect.fail(new TrackingInputError({ field: "image key", value: key, rule: "must use only letters, digits, \"_\", \"-\", \".\", \" \" and \"/\"" }))

/** Reuse keys go into a search filter between single quotes. */
export const checkReuseKey = (key: string): Effect.Effect<void, TrackingInputError> =>
  /^[A-Za-z0-9_.:-]{1,250}$/.test(key)
    ? Effect.void
    : Effect.fail(
      new TrackingInputError({ field: "reuse key", value: key, rule: "must be 1–250 characters from letters, digits, \"_\", \".\", \":\" and \"-\"" })
    )

/** A folder inside a run's artifacts: relative, "/"-separated, never leaving the artifacts folder. */
export const checkArtifactPath = (path: string): Effect.Effect<void, TrackingInputError> =>
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  path === "" || (normalisesToItself(path) && !path.includes("\\") && !/[\u0000-\u001f]/.test(path))
    ? Effect.void
    : Effect.fail(
      new TrackingInputError({ field: "artifact path", value: path, rule: "must be a relative \"/\"-separated path without \".\" or \"..\" segments" })
    )
