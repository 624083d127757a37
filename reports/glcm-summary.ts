import { GLCM_PROPERTIES, type GlcmProperties, type GlcmProperty } from "../framework/metrics/glcm.ts"
import { numeric } from "./metric-columns.ts"
import type { StrategyResult } from "./study-results.ts"

/** One number per GLCM property: the mean over the declared distances and angles. */
export type GlcmSummary = Readonly<Record<GlcmProperty, number | undefined>>

export const summariseGlcm = (properties: GlcmProperties): GlcmSummary =>
  Object.fromEntries(GLCM_PROPERTIES.map((name) => {
    const values = (properties[name] ?? []).flat().map((v) => numeric(v)).filter((v): v is number => v !== undefined)
    return [name, values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length]
  })) as GlcmSummary

/** The real sets of a study: one per distinct reference step, named after the first strategy judged against it. */
export interface RealSet {
  readonly key: string
  readonly label: string
  readonly glcm: GlcmSummary
  readonly strategies: ReadonlyArray<string>
}

export const realSets = (strategies: ReadonlyArray<StrategyResult>, label: string): ReadonlyArray<RealSet> => {
  const byKey = new Map<string, Array<StrategyResult>>()
  for (const s of strategies) byKey.set(s.evaluation.lineage.reference, [...(byKey.get(s.evaluation.lineage.reference) ?? []), s])
  return [...byKey].map(([key, users]) => ({
    key,
    label: byKey.size === 1 ? label : `${label} of ${users[0]!.name}`,
    glcm: summariseGlcm(users[0]!.evaluation.texture.reference),
    strategies: users.map((u) => u.name)
  }))
}
