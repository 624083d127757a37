import type { SceneClass, SyntheticDataset } from "../../../framework/declaration/dataset.ts"
import { SeededRandom } from "../seeded-random.ts"
import { addOpticalGrain } from "./optical-grain.ts"
import { renderOptical } from "./optical-render.ts"
import { renderSar, type SarRendering } from "./sar-render.ts"
import { describeScene, presentClasses } from "./scene-caption.ts"
import { generateLayout, type SceneLayout } from "./scene-layout.ts"

/** What fixes a synthetic scene: the dataset declaration's generator fields. */
export type SceneSpec =
  & Pick<SyntheticDataset, "size" | "seed" | "looks" | "exclude" | "lookDirection" | "incidenceAngle">
  & Partial<Pick<SyntheticDataset, "grain">>

export interface SyntheticScene {
  readonly index: number
  readonly name: string
  readonly layout: SceneLayout
  /** "a harbour with three ships near a bridge" */
  readonly description: string
  readonly classes: ReadonlyArray<SceneClass>
  readonly sar?: SarRendering
  /** RGB, interleaved, 0–255. */
  readonly optical?: Float32Array
}

export const sceneName = (index: number) => `scene-${String(index).padStart(6, "0")}`

/** The optical rendering, with the declared grain from its own stream (so grain leaves the rest as it was). */
const renderedOptical = (spec: SceneSpec, index: number, layout: SceneLayout) => {
  const optical = renderOptical(layout, new SeededRandom(spec.seed, index, 3))
  return spec.grain === undefined || spec.grain === 0 ? optical : addOpticalGrain(optical, new SeededRandom(spec.seed, index, 4), spec.grain)
}

/**
 * Scene `index` of a synthetic dataset. Layout, SAR and optical rendering draw from separate
 * streams keyed by (seed, index), so scene 7 is the same whatever n is, and changing the number
 * of looks changes the speckle but not the layout.
 */
export const generateScene = (
  spec: SceneSpec,
  index: number,
  render: { readonly sar: boolean; readonly optical: boolean } = { sar: true, optical: true }
): SyntheticScene => {
  const layout = generateLayout(new SeededRandom(spec.seed, index, 1), spec.size, new Set(spec.exclude))
  return {
    index,
    name: sceneName(index),
    layout,
    description: describeScene(layout),
    classes: presentClasses(layout),
    ...(render.sar
      ? {
        sar: renderSar(
          layout,
          { looks: spec.looks, lookDirection: spec.lookDirection, incidenceAngle: spec.incidenceAngle },
          new SeededRandom(spec.seed, index, 2)
        )
      }
      : {}),
    ...(render.optical ? { optical: renderedOptical(spec, index, layout) } : {})
  }
}
