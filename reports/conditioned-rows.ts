import { join } from "node:path"
import type { LegendEntry } from "../framework/steps/condition-previews.ts"
import { folderSafe, type GridImage } from "./image-grid.ts"
import { strategyLabel, type StudyResults } from "./study-results.ts"

/**
 * The conditioned results: per conditioned strategy, one row per scene of its conditions — the condition
 * (a label map painted with its legend's colours, or the optical / SAR image), the scene's true SAR, and
 * every sample generated from that condition (one per seed). The previews are the evaluation's
 * (evaluation.json's `paired.scenes` and each pair's preview): the report gets them as its data.
 */

export interface ConditionedRow {
  readonly scene: number
  readonly id: string
  readonly condition: GridImage
  readonly truth: GridImage
  readonly generated: ReadonlyArray<GridImage>
}

export interface ConditionedSection {
  readonly strategy: string
  readonly label: string
  readonly colour: string
  /** Label-map conditions: each class's colour. */
  readonly legend?: ReadonlyArray<LegendEntry>
  readonly rows: ReadonlyArray<ConditionedRow>
  /** Scenes left out to keep the section on a screen. */
  readonly omitted: number
}

/** Scenes shown per strategy: enough to judge whether samples follow their conditions, few enough to scroll past. */
export const conditionedRowLimit = 12

export const conditionedSections = (results: StudyResults): ReadonlyArray<ConditionedSection> =>
  results.strategies.flatMap((s, i): Array<ConditionedSection> => {
    const paired = s.evaluation.paired
    if (paired === undefined) return []
    const folder = `images/conditioned/${i}-${folderSafe(s.name)}`
    const image = (file: string, target: string, caption: string): GridImage => ({
      source: join(s.evaluationDir, file),
      target: `${folder}/${target}`,
      caption
    })
    const rows = paired.scenes.slice(0, conditionedRowLimit).map((scene): ConditionedRow => ({
      scene: scene.scene,
      id: scene.id,
      condition: image(scene.condition, `scene-${scene.scene}-condition.png`, `condition of scene ${scene.scene} (${scene.id})`),
      truth: image(scene.truth, `scene-${scene.scene}-truth.png`, `true SAR of scene ${scene.scene} (${scene.id})`),
      generated: paired.pairs
        .filter((p) => p.scene === scene.scene)
        .map((p, k) => image(p.preview, `scene-${scene.scene}-sample-${k}.png`, `${s.name}, scene ${scene.scene}, seed ${p.seed}`))
    }))
    return [{
      strategy: s.name,
      label: strategyLabel(s),
      colour: s.colour,
      ...(paired.legend === undefined ? {} : { legend: paired.legend }),
      rows,
      omitted: paired.scenes.length - rows.length
    }]
  })

/** Every image the sections show (for the report's images folder). */
export const conditionedImages = (sections: ReadonlyArray<ConditionedSection>): ReadonlyArray<GridImage> =>
  sections.flatMap((s) => s.rows.flatMap((r) => [r.condition, r.truth, ...r.generated]))

/** What the rows show, in words both formats print. */
export const conditionedNote = (section: ConditionedSection): string =>
  `${section.label}: each row one scene of its conditions — the condition the ControlNet was given, the scene's true SAR image, and each sample generated from that condition (captions give the seed).` +
  (section.omitted > 0 ? ` The first ${section.rows.length} scenes are shown; ${section.omitted} more are in the evaluation.` : "")
