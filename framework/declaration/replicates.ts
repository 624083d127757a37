import { contentHash } from "./canonical-json.ts"
import type { Declaration, Experiment } from "./experiment.ts"

/**
 * Training replicates: the same experiment trained with K seeds. Replicate 1 trains with the
 * declared `train.seed`, so declaring replicates keeps the single run (and its cache) as it was;
 * replicate r ≥ 2 trains with the first 32 bits of SHA-256 of the canonical JSON
 * {"replicate": r, "seed": <declared seed>}, so replicate seeds are fixed by the declaration,
 * look unrelated to each other and to declared seeds, and never collide with a neighbour
 * experiment's "seed + 1". Everything else — data, prompts, sampling seeds, the evaluation — is
 * the same for every replicate, so steps that do not read the training seed stay shared.
 */

/** How many trainings an experiment of this declaration has: a baseline trains nothing, so one. */
export const replicatesOf = (experiment: Experiment, declaration?: Declaration): number => {
  if (experiment.baseline || experiment.train === undefined) return 1
  return experiment.replicates ?? (declaration?.kind === "study" ? declaration.replicates : 1)
}

export const replicateSeed = (seed: number, replicate: number): number =>
  replicate === 1 ? seed : Number.parseInt(contentHash({ replicate, seed }).slice(0, 8), 16)

/**
 * The name a replicate's steps and MLflow run go by: the experiment's own when it has one
 * replicate, `<name>#<r>` otherwise (`#` is not allowed in declared names, so it never collides).
 */
export const replicateName = (name: string, replicate: number, replicates: number): string => replicates === 1 ? name : `${name}#${replicate}`

/** The experiment a step's or run's name belongs to: `<name>#<r>` is a replicate of `<name>`. */
export const experimentOfReplicate = (name: string): string => name.split("#")[0]!

/**
 * Whether a step serving `names` (plan steps list experiments and replicates) is one of
 * `experiment`'s; in plan order its replicate 1 (the declared seed) comes first.
 */
export const servesExperiment = (names: ReadonlyArray<string>, experiment: string): boolean => names.some((name) => experimentOfReplicate(name) === experiment)

export interface Replicate {
  /** 1-based. */
  readonly replicate: number
  readonly replicates: number
  readonly name: string
  /** The experiment as this replicate trains it: the declaration with `train.seed` replaced. */
  readonly experiment: Experiment
}

export const replicatesOfExperiment = (experiment: Experiment, declaration?: Declaration): ReadonlyArray<Replicate> => {
  const replicates = replicatesOf(experiment, declaration)
  return Array.from({ length: replicates }, (_, i) => {
    const replicate = i + 1
    const train = experiment.train
    return {
      replicate,
      replicates,
      name: replicateName(experiment.name, replicate, replicates),
      experiment: train === undefined || replicate === 1 ? experiment : { ...experiment, train: { ...train, seed: replicateSeed(train.seed, replicate) } }
    }
  })
}
