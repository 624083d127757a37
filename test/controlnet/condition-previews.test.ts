import { describe, expect, it } from "vitest"
import { conditionLegend, conditionPreview } from "../../framework/steps/condition-previews.ts"

/** How the report shows a scene's condition: label maps painted with their legend's colours, images as they are. Cost: < 1 s. */

const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))

describe("condition previews", () => {
  it("paints each pixel of a one-hot label map with its class's legend colour, black where no class is set", () => {
    const legend = conditionLegend({ classes: { "1": "water", "5": "urban", "3": "crops" } }, [1, 3, 5])!
    expect(legend.map((c) => c.name)).toEqual(["water", "crops", "urban"])
    expect(new Set(legend.map((c) => c.colour)).size).toBe(3)
    // Four pixels: water, urban, crops, none.
    const oneHot = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0])
    const preview = conditionPreview(oneHot, { width: 2, height: 2, channels: 3 }, true)
    expect(preview.channels).toBe(3)
    expect([...preview.data]).toEqual([...rgb(legend[0]!.colour), ...rgb(legend[2]!.colour), ...rgb(legend[1]!.colour), 0, 0, 0])
  })

  it("shows an optical condition as its colours and a SAR one as grey, in 8-bit range", () => {
    const optical = conditionPreview(Float32Array.from([0, 0.5, 1, 1, 1, 1]), { width: 2, height: 1, channels: 3 }, false)
    expect([...optical.data]).toEqual([0, 127.5, 255, 255, 255, 255])
    const sar = conditionPreview(Float32Array.from([0.25, 1]), { width: 2, height: 1, channels: 1 }, false)
    expect(sar.channels).toBe(1)
    expect([...sar.data]).toEqual([63.75, 255])
    expect(conditionLegend({}, [])).toBeUndefined()
  })
})
