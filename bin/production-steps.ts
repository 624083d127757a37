export { productionSteps } from "../framework/steps/production-steps.ts"
