import { canonicalJson, contentHash } from "../declaration/canonical-json.ts"
import { clipDatasets } from "../declaration/clip-model.ts"
import type { Dataset } from "../declaration/dataset.ts"
import { type Declaration, type Experiment, experimentsOf } from "../declaration/experiment.ts"
import { replicatesOfExperiment } from "../declaration/replicates.ts"
import type { EngineName } from "../services/engine.ts"
import { resolveAdaptation, resolveControlNet, textEncodersTrain, trainsVae, type ResolvedAdaptation } from "../declaration/adaptation.ts"
import { declaredFolders, fingerprintKey, type FolderFingerprints } from "./declared-folders.ts"
import {
  codeVersion,
  type ComputedBy,
  type Plan,
  reportRole,
  type Step,
  type StepConfigs,
  type StepInput,
  type StepKind,
  validationDataRole,
  validationRole
} from "./step.ts"

/**
 * Content key = hash(kind, canonical JSON of the fields it reads, input keys, code version, and the
 * fingerprints of the declared folders it reads, when it reads any).
 */
const keyOf = (kind: StepKind, config: unknown, inputKeys: ReadonlyArray<string>, folders: ReadonlyArray<string>): string =>
  contentHash({ kind, config, inputs: inputKeys, code: `sardine/${kind}@${codeVersion[kind]}`, ...(folders.length === 0 ? {} : { folders }) })
    .slice(0, 20)

/** Decoded configs hold only JSON data; this strips `undefined` members so keys are stable. */
const plain = <A>(value: A): A => JSON.parse(canonicalJson(value)) as A

class PlanBuilder {
  private readonly byKey = new Map<string, { step: Step; experiments: Array<string> }>()

  constructor(private readonly fingerprints: FolderFingerprints) {}

  add<K extends StepKind>(
    users: string | ReadonlyArray<string>,
    role: string,
    kind: K,
    config: StepConfigs[K],
    inputs: ReadonlyArray<StepInput>
  ): string {
    const inputKeys = inputs.map((input) => `${input.role}=${this.keyOfId(input.step)}`)
    const folders = declaredFolders({ kind, config } as Parameters<typeof declaredFolders>[0])
      .flatMap((folder) => this.fingerprints.get(fingerprintKey(folder)) ?? [])
    const key = keyOf(kind, config, inputKeys, folders)
    const names = typeof users === "string" ? [users] : users
    const existing = this.byKey.get(key)
    if (existing !== undefined) {
      for (const name of names) if (!existing.experiments.includes(name)) existing.experiments.push(name)
      return existing.step.id
    }
    const id = kind === "report" ? "report" : `${names[0]}/${role}`
    const experiments = [...names]
    this.byKey.set(key, { step: { id, kind, key, config: plain(config), inputs, experiments } as Step, experiments })
    return id
  }

  private keyOfId(id: string): string {
    for (const { step } of this.byKey.values()) if (step.id === id) return step.key
    throw new Error(`plan input ${id} is not in the plan yet`)
  }

  steps(): ReadonlyArray<Step> {
    return [...this.byKey.values()].map(({ step, experiments }) => ({ ...step, experiments: [...experiments] }))
  }
}

/** The `engine` member of the configs of steps an engine computes (none for tfjs: its keys predate the choice). */
const computedBy = (engine: EngineName): ComputedBy => (engine === "tfjs" ? {} : { engine })

/** What later stages need of a compiled experiment: its train step and the base inputs it read. */
interface Compiled {
  readonly experiment: Experiment
  readonly adaptation: ResolvedAdaptation
  readonly train?: string
  readonly base: ReadonlyArray<StepInput>
}

/** The steps that make an experiment's base pipeline, as the `base` input of the steps reading it. */
const baseInputs = (
  builder: PlanBuilder,
  experiment: Experiment,
  compiled: ReadonlyMap<string, Compiled>,
  by: ComputedBy
): ReadonlyArray<StepInput> => {
  const { base, name } = experiment
  switch (base._tag) {
    case "diffusers":
      return []
    case "scratch":
      return [{ role: "base", step: builder.add(name, "base", "init-model", { base, ...by }, []) }]
    case "trained": {
      // Validation guarantees an earlier, trained experiment.
      const source = compiled.get(base.experiment)!
      const merged = builder.add(source.experiment.name, "merged", "merge-model", {
        base: source.experiment.base,
        adaptation: source.adaptation,
        useEma: source.experiment.generate.useEma,
        ...by
      }, [{ role: "model", step: source.train! }, ...source.base])
      return [{ role: "base", step: merged }]
    }
  }
}

/** The steps behind one replicate's evaluation, as the report takes them. */
interface ReplicateSteps {
  readonly name: string
  readonly evaluate: string
  readonly generate: string
  readonly train?: string
}

/**
 * Adds an experiment's steps: the shared ones (data, reference, frozen-encoder caches) once, and
 * train → generate → evaluate once per training replicate (replicates.ts).
 */
const addExperiment = (
  builder: PlanBuilder,
  experiment: Experiment,
  compiled: Map<string, Compiled>,
  declaration: Declaration,
  engine: EngineName
): ReadonlyArray<ReplicateSteps> => {
  const { base, components, name } = experiment
  const by = computedBy(engine)
  const baseInput = baseInputs(builder, experiment, compiled, by)
  // The one place a declaration's adaptation is resolved: every step that trains or samples reads it.
  const controlnet = experiment.conditioning === undefined ? undefined : resolveControlNet(experiment.conditioning, experiment.data)
  const adaptation = resolveAdaptation(components, base.family, controlnet)
  // A ControlNet trains at scale 1 without guess mode (as diffusers' train_controlnet.py); those two only shape
  // sampling, so they stay out of the train step's key: another scale samples the same trained ControlNet.
  const trainedAdaptation = controlnet === undefined ? adaptation : { ...adaptation, controlnet: { ...controlnet, scale: 1, guessMode: false } }
  // Only a caption template that inserts the token makes the prepared captions depend on it.
  const prepare = (dataset: Dataset) => dataset.captionTemplate.includes("{token}") ? { dataset, token: components.token?.token } : { dataset }
  // A ControlNet trains on each image's conditioning image, prepared with it.
  const conditioned = controlnet === undefined ? {} : {
    conditioning: { input: controlnet.input, column: controlnet.column, ...(controlnet.classes === undefined ? {} : { classes: controlnet.classes }) }
  }
  const reference = builder.add(name, "reference", "prepare-data", prepare(experiment.evaluate.reference), [])

  const trainInputs: Array<StepInput> = []
  // A dataset the train step reads, prepared, and encoded with the frozen encoders as the training data is.
  const addTrainingData = (config: StepConfigs["prepare-data"], role: string, inputRole: (role: "data" | "latents" | "text") => string) => {
    const data = builder.add(name, role, "prepare-data", config, [])
    trainInputs.push({ role: inputRole("data"), step: data })
    const vaeTrains = trainsVae(adaptation)
    if (!vaeTrains) {
      trainInputs.push({
        role: inputRole("latents"),
        step: builder.add(name, inputRole("latents"), "encode-latents", { base, ...by }, [{ role: "data", step: data }, ...baseInput])
      })
    }
    // VAE training reconstructs images and never reads text.
    if (!vaeTrains && !textEncodersTrain(adaptation)) {
      trainInputs.push({
        role: inputRole("text"),
        step: builder.add(name, inputRole("text"), "encode-text", { base, ...by }, [{ role: "data", step: data }, ...baseInput])
      })
    }
  }
  if (!experiment.baseline && experiment.train !== undefined) {
    addTrainingData({ ...prepare(experiment.data), ...conditioned }, "data", (role) => role)
    // The held-out loss runs the ControlNet too, so the held-out data is prepared with its conditioning images.
    const heldOut = experiment.train.validationLoss?.data
    if (heldOut !== undefined) addTrainingData({ ...prepare(heldOut), ...conditioned }, validationDataRole, validationRole)
  }
  // A conditioned experiment samples the scenes of generate.conditions, prepared with their conditioning images.
  const scenes = experiment.generate.conditions
  const conditions: ReadonlyArray<StepInput> = scenes === undefined || controlnet === undefined
    ? []
    : [{ role: "conditions", step: builder.add(name, "conditions", "prepare-data", { ...prepare(scenes), ...conditioned }, []) }]
  const { reference: _reference, ...evaluate } = experiment.evaluate
  const replicates = replicatesOfExperiment(experiment, declaration).map(({ experiment: trained, name: unit }): ReplicateSteps => {
    const train = trained.train === undefined || experiment.baseline
      ? undefined
      : builder.add(unit, "train", "train", { base, adaptation: trainedAdaptation, train: trained.train, ...by }, [...trainInputs, ...baseInput])
    const model: ReadonlyArray<StepInput> = train === undefined ? [] : [{ role: "model", step: train }]
    // A baseline samples the base as it is: its generate step has no model input and no training.
    const generate = builder.add(unit, "generate", "generate", { base, adaptation, generate: experiment.generate, ...by }, [
      ...model,
      ...conditions,
      ...baseInput
    ])
    const evaluateStep = builder.add(unit, "evaluate", "evaluate", { evaluate, prompts: experiment.generate.prompts }, [
      { role: "samples", step: generate },
      { role: "reference", step: reference },
      ...conditions
    ])
    return { name: unit, evaluate: evaluateStep, generate, ...(train === undefined ? {} : { train }) }
  })
  // A later stage builds on the first replicate's training (the declared seed); the schema asks for at least one.
  const { train } = replicates[0]!
  compiled.set(name, { experiment, adaptation, base: baseInput, ...(train === undefined ? {} : { train }) })
  return replicates
}

/** The report's inputs: each replicate's evaluation, samples and training, by role and replicate name. */
const reportInputs = (replicates: ReadonlyArray<ReplicateSteps>): ReadonlyArray<StepInput> =>
  replicates.flatMap((r) => [
    { role: reportRole("evaluation", r.name), step: r.evaluate },
    { role: reportRole("samples", r.name), step: r.generate },
    ...(r.train === undefined ? [] : [{ role: reportRole("training", r.name), step: r.train }])
  ])

/**
 * Compiles a validated declaration into its plan (DESIGN §3), its engine steps computed by `engine`.
 * Steps that read the same fields of the same inputs get the same key and appear once, shared by
 * every experiment that needs them. `fingerprints` are those of the declared folders
 * (input-fingerprints.ts computes them); without them, keys do not notice edits to those folders.
 */
export const compilePlan = (declaration: Declaration, fingerprints: FolderFingerprints = new Map(), engine: EngineName = "tfjs"): Plan => {
  const builder = new PlanBuilder(fingerprints)
  const compiled = new Map<string, Compiled>()
  if (declaration.kind === "clip") {
    const { architecture, name, seed, train } = declaration
    const datasets = clipDatasets(declaration)
    // One dataset keeps the step named "data" (and its key); a list gets data-1, data-2, …, read in order.
    const prepared = datasets.map((dataset, i) => builder.add(name, datasets.length === 1 ? "data" : `data-${i + 1}`, "prepare-data", { dataset }, []))
    builder.add(name, "train", "train-clip", { architecture, seed, train }, prepared.map((step) => ({ role: "data", step })))
    return { name, steps: builder.steps() }
  }
  const experiments = experimentsOf(declaration)
  const replicates = experiments.map((experiment) => addExperiment(builder, experiment, compiled, declaration, engine))
  // A study always ends in its report; a lone experiment only when its replicates need summing up.
  if (declaration.kind === "study" || replicates[0]!.length > 1) {
    builder.add(experiments.map((e) => e.name), "report", "report", {
      study: declaration.name,
      experiments,
      replicates: replicates.map((r) => r.length),
      compare: declaration.kind === "study" ? declaration.compare : []
    }, reportInputs(replicates.flat()))
  }
  return { name: declaration.name, steps: builder.steps() }
}
