import type { SceneClass } from "../../../framework/declaration/dataset.ts"
import { BARE_FIELD, classOfLabel, CROPS, FOREST, ROADS } from "./scene-classes.ts"
import type { SceneLayout } from "./scene-layout.ts"

/*
 * A caption derived from what the layout actually holds ("a harbour with three ships near a
 * bridge"), without the modality: the dataset's caption template adds "SAR image of …".
 */

const words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

const counted = (n: number, singular: string, plural: string) => n === 1 ? `a ${singular}` : `${words[n] ?? String(n)} ${plural}`

const listed = (items: ReadonlyArray<string>) => items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`

/** Classes covering at least `fraction` of the scene (small objects are counted separately). */
const covering = (layout: SceneLayout, fraction: number): Set<number> => {
  const counts = new Map<number, number>()
  for (const label of layout.labels) counts.set(label, (counts.get(label) ?? 0) + 1)
  const total = layout.labels.length
  return new Set([...counts].filter(([, n]) => n / total >= fraction).map(([label]) => label))
}

/** Classes present anywhere in the label map, in the declaration's order. */
export const presentClasses = (layout: SceneLayout): Array<SceneClass> => {
  const seen = new Set(layout.labels)
  return [...seen].sort((a, b) => a - b).map(classOfLabel).filter((c): c is SceneClass => c !== undefined)
}

export const describeScene = (layout: SceneLayout): string => {
  const { ships, bridges, roads, buildings } = layout.counts
  const large = covering(layout, 0.03)
  const land = [
    ...(large.has(CROPS) ? ["crop fields"] : []),
    ...(large.has(BARE_FIELD) ? ["bare fields"] : []),
    ...(large.has(FOREST) ? ["forest"] : [])
  ]
  const withShips = ships > 0 ? ` with ${counted(ships, "ship", "ships")}` : ""
  const crossedByRoads = roads > 0 ? ` crossed by ${counted(roads, "road", "roads")}` : ""
  const village = buildings > 0 ? " near a village" : ""
  switch (layout.kind) {
    case "harbour":
      return `a harbour${ships > 0 ? withShips : " with urban blocks"}${bridges > 0 ? ` near ${counted(bridges, "bridge", "bridges")}` : ""}`
    case "river":
      return `a river${bridges > 0 ? ` crossed by ${counted(bridges, "bridge", "bridges")}` : ""}${withShips}${
        land.length > 0 ? ` between ${listed(land)}` : ""
      }${village}`
    case "lake":
      return `a lake${withShips}${land.length > 0 ? ` surrounded by ${listed(land)}` : ""}${village}`
    case "coast":
      return `a coastline${withShips}${land.length > 0 ? ` along ${listed(land)}` : ""}${village}`
    case "open-water":
      return `open water${withShips}`
    case "farmland":
      return `farmland with ${listed(land.length > 0 ? land : ["fields"])}${crossedByRoads}${village}`
    case "town":
      return `a town with urban blocks${covering(layout, 0.01).has(ROADS) ? " and streets" : ""}${large.has(FOREST) ? " near forest" : ""}`
    case "woodland": {
      const clearings = land.filter((l) => l !== "forest")
      return `woodland${clearings.length > 0 ? ` with ${listed(clearings)}` : ""}${crossedByRoads}${village}`
    }
  }
}
