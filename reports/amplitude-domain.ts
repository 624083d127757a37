import type { EvaluationResult } from "../framework/steps/evaluation-result.ts"
import { formatValue } from "./number-format.ts"

type Amplitude = EvaluationResult["amplitude"]

/** The axis title of the declared domain, unit included. */
export const domainAxisTitle = (amplitude: Amplitude): string =>
  amplitude.domain === "amplitude"
    ? "normalised amplitude v = A / (mean + 3·std), clipped to [0, 1] (unitless)"
    : `20·log10(v) of the normalised amplitude v, floored at ${formatValue(amplitude.range[0])} dB (dB)`

/** One sentence stating domain and binning, as DESIGN §6 asks every report to. */
export const domainSentence = (amplitude: Amplitude): string =>
  `${amplitude.domain === "amplitude" ? "Linear normalised amplitude" : "Decibels"} over [${formatValue(amplitude.range[0])}, ${
    formatValue(amplitude.range[1])
  }], ` +
  `${amplitude.bins} equal bins for KL (pseudo-count ${formatValue(amplitude.klPseudoCount)}), JS, Hellinger and Bhattacharyya; ` +
  `Wasserstein-1 and KS on the exact pixel values.`

/** Evaluations drawn on one chart must share domain and binning. */
export const domainKey = (amplitude: Amplitude): string => `${amplitude.domain}|${amplitude.bins}|${amplitude.range.join(",")}`
