/** The pieces the charts are laid out with: ticks, text fitting, decimation, number formats. */
import { describe, expect, it } from "vitest"
import { fittedTicks, horizontalExtent } from "../../reports/charts/axis.ts"
import { decimate } from "../../reports/charts/decimate.ts"
import { linearScale, logScale, niceDomain } from "../../reports/charts/scale.ts"
import { fitName, fitText, textWidth } from "../../reports/charts/text-width.ts"
import { tickLabels } from "../../reports/charts/tick-format.ts"
import { formatChange, formatDuration, formatValue } from "../../reports/number-format.ts"

describe("axis ticks", () => {
  it("end a nice domain on a tick even when floating point rounds the step (0.6 / 3)", () => {
    const domain = niceDomain(0, 0.4996, 3)
    expect(domain).toEqual([0, 0.6])
    expect(linearScale(domain, [0, 208]).ticks(3)).toEqual([0, 0.2, 0.4, 0.6])
  })

  it("thin out until neighbouring labels keep apart, on any axis length", () => {
    for (const length of [40, 90, 200, 640]) {
      const scale = linearScale([0, 123456], [0, length])
      const { labels, values } = fittedTicks(scale, horizontalExtent, 40)
      const positions = values.map(scale.map)
      for (let i = 1; i < values.length; i++) {
        expect(positions[i]! - positions[i - 1]!).toBeGreaterThanOrEqual((horizontalExtent(labels[i]!) + horizontalExtent(labels[i - 1]!)) / 2)
      }
      expect(values.length).toBeGreaterThanOrEqual(1)
    }
  })

  it("label one axis in one style", () => {
    expect(tickLabels([0, 0.5, 1], "linear")).toEqual(["0.0", "0.5", "1.0"])
    expect(tickLabels([-0.2, 0, 0.2], "linear")).toEqual(["−0.2", "0.0", "0.2"])
    expect(tickLabels([0.0001, 0.0002], "linear")).toEqual(["1e−4", "2e−4"])
    expect(tickLabels(logScale([1e-4, 1e-1], [0, 100]).ticks(4), "log")).toEqual(["10⁻⁴", "10⁻³", "10⁻²", "10⁻¹"])
    expect(tickLabels([0.01, 0.1, 1], "log")).toEqual(["0.01", "0.1", "1"])
  })
})

describe("text fitting", () => {
  it("shortens at the end or in the middle to the width asked, keeping both ends of a name", () => {
    const name = "study-unet-lora-rank-16-alpha-32-r8"
    for (const width of [40, 80, 120]) {
      expect(textWidth(fitText(name, 12, width), 12)).toBeLessThanOrEqual(width)
      expect(textWidth(fitName(name, 12, width), 12)).toBeLessThanOrEqual(width)
    }
    const middle = fitName(name, 12, 120)
    expect(middle.startsWith("study")).toBe(true)
    expect(middle.endsWith("r8")).toBe(true)
    expect(fitText("short", 12, 200)).toBe("short")
  })
})

describe("decimation", () => {
  it("keeps a long curve's envelope, order and ends with far fewer points", () => {
    const points = Array.from({ length: 20_000 }, (_, i) => [i + 1, Math.sin(i / 50) + (i % 97 === 0 ? 5 : 0)] as const)
    const kept = decimate(points, 300)
    expect(kept.length).toBeLessThanOrEqual(4 * 300)
    expect(kept[0]).toEqual(points[0])
    expect(kept.at(-1)).toEqual(points.at(-1))
    expect(Math.max(...kept.map(([, y]) => y))).toBe(Math.max(...points.map(([, y]) => y)))
    expect(Math.min(...kept.map(([, y]) => y))).toBe(Math.min(...points.map(([, y]) => y)))
    expect(kept.every((p, i) => i === 0 || p[0] > kept[i - 1]![0])).toBe(true)
    expect(decimate(points.slice(0, 100), 300)).toHaveLength(100)
  })
})

describe("number formats", () => {
  it("print values, changes and durations the same way in both report formats", () => {
    expect(formatValue(0.022241)).toBe("0.02224")
    expect(formatValue(-24.7612)).toBe("−24.76")
    expect(formatValue(0.00017551)).toBe("1.755e−4")
    expect(formatValue(null)).toBe("n/a")
    expect(formatChange(-0.5871)).toBe("−59 %")
    expect(formatChange(0.0321)).toBe("+3.2 %")
    expect(formatChange(0.00001)).toBe("±0 %")
    expect(formatDuration(850)).toBe("850 ms")
    expect(formatDuration(299_600)).toBe("4 min 59 s")
    expect(formatDuration(7_380_000)).toBe("2 h 03 min")
  })
})
