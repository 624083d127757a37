import { textEncodersOf } from "./base-model.ts"
import { canonicalJson } from "./canonical-json.ts"
import { conditioningIssues } from "./conditioning-rules.ts"
import type { Dataset } from "./dataset.ts"
import type { Declaration, Experiment } from "./experiment.ts"
import { promptsOf } from "./generation.ts"
import { resolutionOf } from "./normalise.ts"
import { textEncoderTreatments } from "./components.ts"
import { describeTreatment, trains } from "./treatment.ts"

/** A rule broken by a declaration: where (JSON path) and what. */
export interface DeclarationIssue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

/** What a dataset's images are: SAR, or the synthetic generator's optical rendering. */
const modalityOf = (dataset: Dataset) => (dataset._tag === "synthetic" ? dataset.modality : "sar")

/**
 * A held-out validation dataset is measured with the training data's latent shape and by the same
 * model, so it must be of the same modality and resolution (the train step checks channels once prepared).
 */
const heldOutDataIssues = (heldOut: Dataset, data: Dataset): ReadonlyArray<DeclarationIssue> => {
  const path = ["train", "validationLoss", "data"]
  if (canonicalJson(heldOut) === canonicalJson(data)) return [{ path, message: "is the training data itself: it holds nothing out" }]
  const issues: Array<DeclarationIssue> = []
  if (modalityOf(heldOut) !== modalityOf(data)) {
    issues.push({ path, message: `holds ${modalityOf(heldOut)} images, the training data ${modalityOf(data)} images` })
  }
  if (resolutionOf(heldOut) !== resolutionOf(data)) {
    issues.push({
      path: [...path, heldOut._tag === "synthetic" ? "size" : "resolution"],
      message: `is ${resolutionOf(heldOut)} pixels square, the training data ${resolutionOf(data)}: the held-out loss is measured at the training resolution`
    })
  }
  return issues
}

const tokenPlaceholder = /\{token\}/
const angleTokens = (text: string): ReadonlyArray<string> => [...text.matchAll(/<[^<>\s]+>/g)].map((m) => m[0])

/** Texts that may name the learned token, with where they sit in the declaration. */
const tokenBearingTexts = (experiment: Experiment) => {
  const datasets: ReadonlyArray<readonly [ReadonlyArray<string>, Dataset]> = [
    [["data"], experiment.data],
    [["evaluate", "reference"], experiment.evaluate.reference],
    ...(experiment.train?.validationLoss?.data === undefined ? [] : [[["train", "validationLoss", "data"], experiment.train.validationLoss.data] as const]),
    ...(experiment.generate.conditions === undefined ? [] : [[["generate", "conditions"], experiment.generate.conditions] as const])
  ]
  return [
    ...promptsOf(experiment.generate).map((p, i) => [["generate", "prompts", i], p.text] as const),
    ...promptsOf(experiment.generate).flatMap((p, i) =>
      p.negativePrompt === undefined ? [] : [[["generate", "prompts", i, "negativePrompt"], p.negativePrompt] as const]
    ),
    ...(experiment.generate.negativePrompt === undefined ? [] : [[["generate", "negativePrompt"], experiment.generate.negativePrompt] as const]),
    ...(experiment.train?.validationPrompts ?? []).map((p, i) => [["train", "validationPrompts", i], p] as const),
    ...datasets.map(([path, d]) => [[...path, "captionTemplate"], d.captionTemplate] as const)
  ]
}

const experimentIssues = (experiment: Experiment): ReadonlyArray<DeclarationIssue> => {
  const issues: Array<DeclarationIssue> = []
  if (experiment.train?.validationEvery !== undefined && experiment.train.validationPrompts.length === 0) {
    issues.push({ path: ["train", "validationEvery"], message: "samples nothing without train.validationPrompts" })
  }
  const { base, components } = experiment
  const family = base.family
  const encoders = textEncodersOf(family)

  const declaredEncoders = components.textEncoders
  if (!("_tag" in declaredEncoders) && declaredEncoders.textEncoder2 !== undefined && family !== "sdxl") {
    issues.push({
      path: ["components", "textEncoders", "textEncoder2"],
      message: `exists only on SDXL bases (base.family is "${family}")`
    })
  }

  const token = components.token
  if (token?.encoders !== undefined) {
    if (token.encoders.length === 0) {
      issues.push({ path: ["components", "token", "encoders"], message: "must name at least one text encoder" })
    }
    token.encoders.forEach((name, i) => {
      if (!encoders.includes(name)) {
        issues.push({
          path: ["components", "token", "encoders", i],
          message: `${name} exists only on SDXL bases (base.family is "${family}")`
        })
      }
    })
  }

  const treatments = [
    ["unet", components.unet],
    ["vae", components.vae],
    ...textEncoderTreatments(components, family).map(([name, t]) => [`textEncoders.${name}`, t] as const)
  ] as const
  const trained = treatments.filter(([, t]) => trains(t)).map(([name, t]) => `${name} is ${describeTreatment(t)}`)
  if (token !== undefined) trained.push(`token ${token.token} is learned`)
  const diffusionTrains = token !== undefined || treatments.some(([name, t]) => name !== "vae" && trains(t))
  const validation = experiment.train?.validationLoss
  if (validation !== undefined && !diffusionTrains) {
    issues.push({ path: ["train", "validationLoss"], message: "measures the diffusion loss, which nothing declared trains (only the VAE, or nothing)" })
  }
  // A synthetic set's size is declared: its split is checked now (an image folder's when the train step counts it).
  const fraction = validation?.fraction
  if (fraction !== undefined && experiment.data._tag === "synthetic" && Math.round(fraction * experiment.data.n) < 1) {
    issues.push({
      path: ["train", "validationLoss", "fraction"],
      message: `holds out none of the ${experiment.data.n} images of data (round(${fraction} · ${experiment.data.n}) = 0)`
    })
  }
  if (validation?.data !== undefined) { for (const issue of heldOutDataIssues(validation.data, experiment.data)) issues.push(issue) }
  const conditioning = experiment.conditioning
  if (conditioning !== undefined && trains(conditioning.treatment)) trained.push(`conditioning is ${describeTreatment(conditioning.treatment)}`)

  if (experiment.baseline && trained.length > 0) {
    issues.push({ path: ["baseline"], message: `a baseline trains nothing, but ${trained.join(", ")}` })
  }
  if (!experiment.baseline && trained.length === 0) {
    issues.push({
      path: ["components"],
      message: "trains nothing (every component frozen, no learned token); mark the experiment `baseline: true` to sample the base model as it is"
    })
  }
  if (experiment.baseline && (experiment.replicates ?? 1) > 1) {
    issues.push({ path: ["replicates"], message: "a baseline trains nothing: its replicates would all be the same model" })
  }
  if (!experiment.baseline && experiment.train === undefined) {
    issues.push({ path: ["train"], message: "is missing (only a baseline may omit it)" })
  }
  if (trains(components.vae) && trained.length > 1) {
    issues.push({
      path: ["components", "vae"],
      message: "a trained VAE must be the only trained component (its latents would move under the UNet); declare VAE training as its own experiment"
    })
  }

  for (const [path, text] of tokenBearingTexts(experiment)) {
    if (tokenPlaceholder.test(text) && token === undefined) {
      issues.push({ path, message: `uses {token} but no learned token is declared (components.token)` })
    }
    for (const mentioned of angleTokens(text)) {
      if (mentioned !== token?.token) {
        issues.push({
          path,
          message: token === undefined
            ? `mentions ${mentioned}, but no learned token is declared (components.token)`
            : `mentions ${mentioned}, which is not the declared token ${token.token}`
        })
      }
    }
  }
  for (const issue of conditioningIssues(experiment)) issues.push(issue)
  return issues
}

/** A trained base names an earlier, trained experiment of the same family. */
const trainedBaseIssues = (experiment: Experiment, earlier: ReadonlyArray<Experiment>): ReadonlyArray<DeclarationIssue> => {
  const base = experiment.base
  if (base._tag !== "trained") return []
  const path = ["base", "experiment"]
  const source = earlier.find((e) => e.name === base.experiment)
  if (source === undefined) {
    return [{
      path,
      message: `"${base.experiment}" is not an experiment declared before this one in the study (stages run in declaration order)`
    }]
  }
  if (source.baseline) return [{ path, message: `"${base.experiment}" is a baseline: it trains nothing to build on` }]
  if (source.base.family !== base.family) {
    return [{ path: ["base", "family"], message: `must match "${base.experiment}"'s family "${source.base.family}" (got "${base.family}")` }]
  }
  return []
}

/** Rules that span several fields, checked after every field is individually valid. */
export const crossFieldIssues = (declaration: Declaration): ReadonlyArray<DeclarationIssue> => {
  if (declaration.kind === "experiment") {
    return [...experimentIssues(declaration), ...trainedBaseIssues(declaration, [])]
  }
  if (declaration.kind === "clip") return []
  const issues: Array<DeclarationIssue> = []
  const firstIndex = new Map<string, number>()
  declaration.experiments.forEach((experiment, i) => {
    const seen = firstIndex.get(experiment.name)
    if (seen === undefined) firstIndex.set(experiment.name, i)
    else {
      issues.push({
        path: ["experiments", i, "name"],
        message: `"${experiment.name}" is already the name of experiments.${seen}`
      })
    }
    // An experiment file that also runs alone may name its engine; in a study it must be the study's.
    if (experiment.engine !== undefined && experiment.engine !== declaration.engine) {
      issues.push({
        path: ["experiments", i, "engine"],
        message: `a study runs on one engine: this experiment says "${experiment.engine}", the study ${
          declaration.engine === undefined ? "none (tfjs)" : `"${declaration.engine}"`
        }; set \`engine\` on the study (or run with --engine)`
      })
    }
    const own = [...experimentIssues(experiment), ...trainedBaseIssues(experiment, declaration.experiments.slice(0, i))]
    for (const issue of own) issues.push({ ...issue, path: ["experiments", i, ...issue.path] })
    const first = declaration.experiments[0]!.evaluate.uncertainty
    if (i > 0 && canonicalJson(experiment.evaluate.uncertainty) !== canonicalJson(first)) {
      issues.push({
        path: ["experiments", i, "evaluate", "uncertainty"],
        message: `must equal experiments.0's (${canonicalJson(first)}): the study's comparisons use one level, resample count and seed`
      })
    }
  })
  declaration.compare.forEach(([a, b], k) => {
    for (const [side, name] of [[0, a], [1, b]] as const) {
      if (!firstIndex.has(name)) issues.push({ path: ["compare", k, side], message: `"${name}" is not an experiment of this study` })
    }
    if (a === b) issues.push({ path: ["compare", k], message: `compares "${a}" with itself` })
  })
  return issues
}
