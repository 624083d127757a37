import { Effect, Layer } from "effect"
import { StepFailed } from "../framework/runner/step-handler.ts"
import { StepImplementations } from "../framework/runner/step-implementations.ts"

const pending = (kind: string) => (context: { step: { id: string } }) =>
  Effect.fail(new StepFailed({ step: context.step.id, reason: `the ${kind} step is not wired yet` }))

export const productionSteps = Layer.succeed(StepImplementations, {
  handlers: {
    "prepare-data": pending("prepare-data"),
    "encode-latents": pending("encode-latents"),
    "encode-text": pending("encode-text"),
    train: pending("train"),
    generate: pending("generate"),
    evaluate: pending("evaluate"),
    report: pending("report")
  }
})
