/**
 * The scene a prompt or caption names (framework/steps/caption-scene.ts), which picks the real
 * scenes of a prompt's row in the report's sample grid: checked against every scene kind the
 * synthetic generator draws, so a change in how it words its captions fails here.
 */
import { describe, expect, it } from "vitest"
import type { SceneKind } from "../../adapters/data/synthetic/scene-layout.ts"
import { generateScene } from "../../adapters/data/synthetic/scene-generator.ts"
import { sceneOf } from "../../framework/steps/caption-scene.ts"

/** What each kind's caption calls it. */
const named: Record<SceneKind, string> = {
  harbour: "harbour",
  river: "river",
  lake: "lake",
  coast: "coastline",
  "open-water": "open water",
  farmland: "farmland",
  town: "town",
  woodland: "woodland"
}

describe("the scene a caption names", () => {
  it("is the synthetic scene's kind, for every kind the generator draws, whatever the modality word or token", () => {
    const kinds = new Set<SceneKind>()
    // Open water only when every land class is excluded.
    const land = ["bare-field", "crops", "forest", "urban", "roads"] as const
    for (const [seed, exclude, count] of [[1, [], 300], [99, [], 300], [5, land, 10]] as const) {
      for (let index = 0; index < count; index++) {
        const spec = { size: 32, seed, looks: 1, exclude: [...exclude], lookDirection: "right", incidenceAngle: 35 } as const
        const scene = generateScene(spec, index, { sar: false, optical: false })
        kinds.add(scene.layout.kind)
        for (const caption of [`SAR image of ${scene.description}`, `<SAR> image of ${scene.description}`, scene.description]) {
          expect(sceneOf(caption), caption).toBe(named[scene.layout.kind])
        }
      }
    }
    expect([...kinds].sort()).toEqual(Object.keys(named).sort())
  })

  it("reads prompts that are not the generator's the same way, and names none in an empty text", () => {
    expect(sceneOf("SAR image of an airport with parked aircraft")).toBe("airport")
    expect(sceneOf("{token} image of a wind farm at sea")).toBe("wind farm")
    expect(sceneOf("SAR Image Of The Harbour, near a bridge.")).toBe("harbour")
    expect(sceneOf("a dense urban area")).toBe("dense urban area")
    expect(sceneOf("SAR image of")).toBeUndefined()
    expect(sceneOf("")).toBeUndefined()
  })
})
