import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { resourcesFor } from "../../framework/declaration/resources.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { stepResources } from "../../framework/plan/step-resources.ts"
import type { Study } from "../../framework/declaration/experiment.ts"
import { stepKinds } from "../../framework/plan/step.ts"
import { batchScript, sbatchArguments } from "../../adapters/slurm/job-script.ts"
import { fileStudy } from "../support/declarations.ts"

const decode = (resources: unknown) => Effect.runSync(Effect.either(decodeDeclaration({ ...fileStudy(), resources })))

describe("resources per step kind in a study", () => {
  it("names the field and the rule of every malformed entry", () => {
    const result = decode({
      default: { cpus: 0, memory: "16GB" },
      train: { gpus: -1, time: "4h", partition: "gpu a", account: "a,b" },
      trian: {}
    })
    expect(Either.isLeft(result)).toBe(true)
    const lines = Either.isLeft(result) ? result.left.lines : []
    expect(lines).toEqual([
      `resources.trian: is unexpected, expected: ${["default", ...stepKinds].map((k) => JSON.stringify(k)).join(" | ")}`,
      "resources.default.cpus: must be an integer ≥ 1 (got 0)",
      `resources.default.memory: must be a memory size such as "512M", "16G" or "1T" (got "16GB")`,
      "resources.train.gpus: must be an integer ≥ 0 (got -1)",
      `resources.train.time: must be a SLURM time limit such as "90" (minutes), "4:00:00" (hours:minutes:seconds) or "2-00:00:00" (days-hours:minutes:seconds) (got "4h")`,
      `resources.train.partition: must be a SLURM partition name, or several separated by commas (got "gpu a")`,
      `resources.train.account: must be a SLURM account name (letters, digits, '_', '.', '-') (got "a,b")`
    ])
  })

  it("refuses a QOS or constraint SLURM would not parse, naming the field", () => {
    const result = decode({ default: { qos: "high q" }, train: { constraint: "a100 h100" } })
    expect(Either.isLeft(result) ? result.left.lines : []).toEqual([
      `resources.default.qos: must be a SLURM QOS name (letters, digits, '_', '.', '-') (got "high q")`,
      `resources.train.constraint: must be a SLURM constraint such as "a100" or "h100|h200" (got "a100 h100")`
    ])
  })

  it("an experiment's resources win over the study's for its own steps", () => {
    const study = fileStudy()
    const result = Effect.runSync(Effect.either(decodeDeclaration({
      ...study,
      resources: { default: { time: "1:00:00" }, train: { gpus: 1, memory: "64G" } },
      experiments: [{ ...study.experiments[0], resources: { train: { gpus: 4, qos: "long" } } }]
    })))
    const declaration = Either.isRight(result) ? (result.right as Study) : undefined
    expect(declaration).toBeDefined()
    const train = compilePlan(declaration!).steps.find((s) => s.kind === "train")!
    expect(stepResources(declaration!, train)).toEqual({ cpus: 1, gpus: 4, time: "1:00:00", memory: "64G", qos: "long" })
    const generate = compilePlan(declaration!).steps.find((s) => s.kind === "generate")!
    expect(stepResources(declaration!, generate)).toEqual({ cpus: 1, gpus: 0, time: "1:00:00" })
  })

  it("a kind's entry overrides `default` field by field, over one CPU and no GPU", () => {
    const result = decode({ default: { time: "1:00:00", partition: "cpu" }, train: { gpus: 2, partition: "gpu", memory: "32G" } })
    const resources = Either.isRight(result) ? (result.right as Study).resources : undefined
    expect(resourcesFor(resources, "train")).toEqual({ cpus: 1, gpus: 2, time: "1:00:00", partition: "gpu", memory: "32G" })
    expect(resourcesFor(resources, "report")).toEqual({ cpus: 1, gpus: 0, time: "1:00:00", partition: "cpu" })
    expect(resourcesFor(undefined, "generate")).toEqual({ cpus: 1, gpus: 0 })
  })

  it("become sbatch options; a job with inputs waits for their jobs and is dropped if one fails", () => {
    expect(sbatchArguments({
      name: "sardine:full-unet/train",
      output: "/c/jobs/logs/k.%j.out",
      chdir: "/work",
      resources: { cpus: 4, gpus: 1, memory: "32G", time: "2-00:00:00", partition: "gpu", account: "sar" },
      after: ["12", "13"]
    })).toEqual([
      "--job-name=sardine:full-unet/train",
      "--output=/c/jobs/logs/k.%j.out",
      "--chdir=/work",
      "--cpus-per-task=4",
      "--gpus-per-node=1",
      "--mem=32G",
      "--time=2-00:00:00",
      "--partition=gpu",
      "--account=sar",
      "--dependency=afterok:12:13",
      "--kill-on-invalid-dep=yes"
    ])
    expect(sbatchArguments({ name: "n", output: "o", chdir: "d", resources: { cpus: 1, gpus: 0 }, after: [] }))
      .toEqual(["--job-name=n", "--output=o", "--chdir=d", "--cpus-per-task=1"])
  })

  it("the QOS and constraint declared go to sbatch as given", () => {
    expect(sbatchArguments({
      name: "t",
      output: "o",
      chdir: "d",
      resources: { gpus: 8, cpus: 12, memory: "900G", qos: "long", constraint: "h100|h200" },
      after: []
    })).toEqual([
      "--job-name=t",
      "--output=o",
      "--chdir=d",
      "--cpus-per-task=12",
      "--gpus-per-node=8",
      "--mem=900G",
      "--qos=long",
      "--constraint=h100|h200"
    ])
  })

  it("the job script execs the command with every word quoted for the shell", () => {
    expect(batchScript(["/usr/bin/node", "/a b/sardine.js", "step", "it's.json"], "sardine step x")).toBe(
      "#!/bin/sh\n# sardine step x\nexec /usr/bin/node '/a b/sardine.js' step 'it'\\''s.json'\n"
    )
  })
})
