import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { resourcesFor } from "../../framework/declaration/resources.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { stepResources } from "../../framework/plan/step-resources.ts"
import type { Study } from "../../framework/declaration/experiment.ts"
import { stepKinds } from "../../framework/plan/step.ts"
import { batchScript, sbatchArguments, srunEnvironment, trainingTasks } from "../../adapters/slurm/job-script.ts"
import { describeAllocation } from "../../framework/services/executor.ts"
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

  it("a train step on several processes or nodes (torch) asks for them as tasks, every other field mapped too", () => {
    const declaration = Effect.runSync(decodeDeclaration({ ...fileStudy(), engine: "torch" })) as Study
    const steps = compilePlan(declaration, new Map(), "torch").steps
    const train = steps.find((s) => s.kind === "train")!
    const generate = steps.find((s) => s.kind === "generate")!
    const tfjsTrain = compilePlan(declaration, new Map(), "tfjs").steps.find((s) => s.kind === "train")!
    expect(trainingTasks(train, { processes: 2 })).toEqual({ nodes: 1, perNode: 2 })
    expect(trainingTasks(train, { gpus: 8, nodes: 2 })).toEqual({ nodes: 2, perNode: 8 })
    expect(trainingTasks(train, { nodes: 2 })).toEqual({ nodes: 2, perNode: 1 })
    // One process: the job runs it as before, without srun.
    expect(trainingTasks(train, { gpus: 1 })).toBeUndefined()
    expect(trainingTasks(tfjsTrain, { processes: 2 })).toBeUndefined()
    expect(trainingTasks(generate, { gpus: 4 })).toBeUndefined()
    expect(sbatchArguments({
      name: "t",
      output: "o",
      chdir: "d",
      resources: { gpus: 4, nodes: 2, cpus: 8, memory: "400G", time: "2-00:00:00", partition: "gpu", account: "sar", qos: "long", constraint: "h100" },
      after: [],
      tasks: { nodes: 2, perNode: 4 }
    })).toEqual([
      "--job-name=t",
      "--output=o",
      "--chdir=d",
      "--nodes=2",
      "--ntasks-per-node=4",
      "--cpus-per-task=8",
      "--gpus-per-node=4",
      "--mem=400G",
      "--time=2-00:00:00",
      "--partition=gpu",
      "--account=sar",
      "--qos=long",
      "--constraint=h100"
    ])
    expect(batchScript(["node", "sardine.js", "step"], "sardine step t", srunEnvironment)).toBe(
      "#!/bin/sh\n# sardine step t\nexport SARDINE_TORCH_LAUNCHER=srun\nexec node sardine.js step\n"
    )
  })

  it("an allocation of several tasks reads nodes × tasks × GPUs", () => {
    expect(describeAllocation({ gpus: 4, cpus: 8, memory: "400G", nodes: 2, tasksPerNode: 4 })).toBe(
      "2 nodes × 4 tasks × 1 GPU (8 GPUs), 8 CPUs a task, 400G a node"
    )
    expect(describeAllocation({ gpus: 0, cpus: 1, memory: "2G", nodes: 1, tasksPerNode: 2 })).toBe("1 node × 2 tasks, no GPU, 1 CPU a task, 2G a node")
    expect(describeAllocation({ gpus: 3, cpus: 1, nodes: 2, tasksPerNode: 2 })).toBe("2 nodes × 2 tasks, 3 GPUs a node (6 GPUs), 1 CPU a task")
    expect(describeAllocation({ gpus: 1, cpus: 4, memory: "32G" })).toBe("1 GPU, 4 CPUs, 32G")
  })
})
