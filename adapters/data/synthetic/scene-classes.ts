import { sceneClasses, type SceneClass } from "../../../framework/declaration/dataset.ts"

/** Label-map value of each class: its position in `sceneClasses` plus one (0 = nothing). */
export const labelOf = (cls: SceneClass): number => sceneClasses.indexOf(cls) + 1

export const classOfLabel = (label: number): SceneClass | undefined => sceneClasses[label - 1]

export const WATER = labelOf("water")
export const BARE_FIELD = labelOf("bare-field")
export const CROPS = labelOf("crops")
export const FOREST = labelOf("forest")
export const URBAN = labelOf("urban")
export const ROADS = labelOf("roads")
export const BRIDGES = labelOf("bridges")
export const SHIPS = labelOf("ships")

/** Written next to a synthetic dataset so a label map can be read without sardine. */
export const labelLegend = (): Record<string, SceneClass> => Object.fromEntries(sceneClasses.map((cls) => [String(labelOf(cls)), cls]))
