import type { Conditioning } from "./conditioning.ts"
import { classValues, syntheticClasses, syntheticColumns } from "./conditioning.ts"
import type { DeclarationIssue } from "./cross-field-rules.ts"
import type { Dataset } from "./dataset.ts"
import type { Experiment } from "./experiment.ts"

/**
 * The rules between an experiment's conditioning, its datasets and its generation, checked with the
 * other cross-field rules (validate time, no file read). What needs the files — a column missing from
 * an image folder's metadata, a label value outside the classes, the ControlNet folder's channels —
 * is checked when the data is prepared and the model loaded, naming the file.
 */

const describeClasses = (classes: Readonly<Record<string, string>>) => classValues(classes).map((v) => `${v} ${classes[String(v)]}`).join(", ")

/** The datasets a conditioning reads its images from, with their declaration paths. */
const conditionedDatasets = (experiment: Experiment): ReadonlyArray<readonly [ReadonlyArray<string>, Dataset]> => [
  [["data"], experiment.data],
  ...(experiment.train?.validationLoss?.data === undefined ? [] : [[["train", "validationLoss", "data"], experiment.train.validationLoss.data] as const]),
  ...(experiment.generate.conditions === undefined ? [] : [[["generate", "conditions"], experiment.generate.conditions] as const])
]

/** `where` in a message stands for the datasets that break the rule (several break it alike: said once). */
const where = "{where}"

const datasetIssues = (conditioning: Conditioning, path: ReadonlyArray<string>, dataset: Dataset): Array<DeclarationIssue> => {
  if (dataset._tag === "synthetic") {
    if (conditioning.input === "sar") {
      return [{
        path: ["conditioning", "input"],
        message: `"sar" needs a second SAR image per scene, which synthetic scenes (${where}) do not have; use an image folder whose metadata names one`
      }]
    }
    const holds = syntheticColumns[conditioning.from]
    if (holds === undefined) {
      const columns = Object.entries(syntheticColumns).map(([column, input]) => `${column} (${input})`).join(", ")
      return [{ path: ["conditioning", "from"], message: `synthetic scenes (${where}) have no column "${conditioning.from}"; they have ${columns}` }]
    }
    if (holds !== conditioning.input) {
      return [{
        path: ["conditioning", "input"],
        message: `is "${conditioning.input}", but ${conditioning.from} of synthetic scenes (${where}) holds ${holds} images`
      }]
    }
    const declared = conditioning.classes
    if (declared !== undefined) {
      const mine = classValues(syntheticClasses)
      const theirs = classValues(declared)
      const same = mine.length === theirs.length && mine.every((v, i) => v === theirs[i] && syntheticClasses[String(v)] === declared[String(v)])
      if (!same) {
        return [{
          path: ["conditioning", "classes"],
          message: `the synthetic generator's label maps (${where}) have ${mine.length} classes (${describeClasses(syntheticClasses)}); got ${theirs.length} (${
            describeClasses(declared)
          }) — leave classes out for synthetic scenes`
        }]
      }
    }
    return []
  }
  if (dataset._tag === "webdataset") {
    return [{
      path: ["conditioning", "from"],
      message:
        `names the metadata column "${conditioning.from}", but WebDataset shards (${where}) have no metadata columns and sardine does not read a ControlNet's conditioning images from shards; use an image folder or synthetic scenes`
    }]
  }
  const issues: Array<DeclarationIssue> = []
  if (conditioning.input === "label-map" && conditioning.classes === undefined) {
    issues.push({ path: ["conditioning", "classes"], message: `is missing: label maps of an image folder (${where}) need { <pixel value>: <class name> }` })
  }
  if (conditioning.input === "sar" && dataset.normalisation._tag === "mean-std" && dataset.normalisation.statistics === "dataset") {
    issues.push({
      path: [...path, "normalisation", "statistics"],
      message: `"dataset" statistics are not computed for conditioning SAR images (conditioning.input "sar"); declare "per-image" or given { mean, std }`
    })
  }
  return issues
}

export const conditioningIssues = (experiment: Experiment): ReadonlyArray<DeclarationIssue> => {
  const { conditioning, generate } = experiment
  const issues: Array<DeclarationIssue> = []
  if (generate.prompts === undefined && generate.conditions === undefined) {
    issues.push({ path: ["generate", "prompts"], message: "is missing (only an experiment that samples the scenes of generate.conditions may omit it)" })
  }
  if (conditioning === undefined) {
    if (generate.conditions !== undefined) {
      issues.push({ path: ["generate", "conditions"], message: "is for conditioned experiments only (declare conditioning: controlNet({ … }))" })
    }
    return issues
  }
  if (generate.conditions === undefined) {
    issues.push({
      path: ["generate", "conditions"],
      message:
        `is missing: a conditioned experiment samples the scenes of a dataset with conditioning images (its ${conditioning.from} column) and compares each sample with its scene's true image`
    })
  }
  if (generate.prompts !== undefined && generate.conditions !== undefined) {
    issues.push({
      path: ["generate", "prompts"],
      message: "is not used by a conditioned experiment: each scene of generate.conditions is prompted with its own caption; remove it"
    })
  }
  if (conditioning.input !== "label-map" && conditioning.classes !== undefined) {
    issues.push({ path: ["conditioning", "classes"], message: `only label maps have classes (input is "${conditioning.input}")` })
  }
  if (conditioning.init === "unet" && conditioning.treatment._tag === "frozen") {
    issues.push({
      path: ["conditioning", "treatment"],
      message: "a frozen ControlNet made from the UNet adds nothing (its zero convolutions stay zero); train it, or init it from a trained ControlNet folder"
    })
  }
  if (conditioning.init !== "unet" && conditioning.embedding !== undefined) {
    issues.push({
      path: ["conditioning", "embedding"],
      message: `shapes a new ControlNet (init "unet"); the ControlNet folder "${conditioning.init}" brings its own`
    })
  }
  const byRule = new Map<string, { issue: DeclarationIssue; datasets: Array<string> }>()
  for (const [path, dataset] of conditionedDatasets(experiment)) {
    for (const issue of datasetIssues(conditioning, path, dataset)) {
      const key = `${issue.path.join(".")}: ${issue.message}`
      const seen = byRule.get(key) ?? { issue, datasets: [] }
      seen.datasets.push(path.join("."))
      byRule.set(key, seen)
    }
  }
  for (const { issue, datasets } of byRule.values()) issues.push({ ...issue, message: issue.message.replace(where, datasets.join(", ")) })
  return issues
}
