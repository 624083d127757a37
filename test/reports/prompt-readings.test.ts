/**
 * Each prompt's reading for the report's sample grid (framework/steps/prompt-readings.ts) and the
 * line the grid prints from it (reports/sample-readings.ts), on hand-made scores where ties and
 * missing scenes are known; report.test.ts checks the same on a real study. Milliseconds.
 */
import { describe, expect, it } from "vitest"
import { promptReadings } from "../../framework/steps/prompt-readings.ts"
import { generatedReading, referenceReading } from "../../reports/sample-readings.ts"

const statistics = (enl: number) => ({ mean: 1, std: 1, cv: 1, enl, gammaLooks: 1 })
const image = (promptIndex: number, declaredPrompt: string, enl: number) => ({
  promptIndex,
  declaredPrompt,
  split: "seen" as const,
  statistics: statistics(enl)
})

const prompts = ["SAR image of a harbour with a ship", "SAR image of a river crossed by a bridge", "SAR image of an airport"]
const generated = [
  image(0, prompts[0]!, 1),
  image(0, prompts[0]!, 3),
  image(1, prompts[1]!, 2),
  image(1, prompts[1]!, Number.NaN),
  image(2, prompts[2]!, 4),
  image(2, prompts[2]!, 4)
]
const reference = [
  { caption: "SAR image of a river crossed by two bridges", statistics: statistics(0.5) },
  { caption: "SAR image of a harbour with urban blocks", statistics: statistics(0.25) },
  { caption: "SAR image of a town with urban blocks", statistics: statistics(9) },
  { caption: "SAR image of a harbour near a bridge", statistics: statistics(0.75) }
]
// Image × prompt scores: images 0–1 put the harbour first; image 2 ties river and harbour, image 3 puts the river first;
// images 4–5 put the river first.
const scores = Float64Array.from([
  [9, 1, 0],
  [8, 2, 1],
  [5, 5, 1],
  [1, 6, 2],
  [0, 3, 2],
  [0, 3, 1]
].flat())

describe("a prompt's reading", () => {
  const { previewed, readings } = promptReadings({ generated, reference, retrieval: { scores, prompts: 3, own: [0, 0, 1, 1, 2, 2] } })

  it("names the prompt's scene, the mean ENL of its samples (finite ones), and the reference scenes that name the same one", () => {
    expect(readings.map((r) => [r.promptIndex, r.scene, r.samples, r.enl])).toEqual([[0, "harbour", 2, 2], [1, "river", 2, 2], [2, "airport", 2, 4]])
    expect(readings.map((r) => ({ scenes: r.reference.scenes, enl: r.reference.enl }))).toEqual([
      { scenes: 2, enl: 0.5 },
      { scenes: 1, enl: 0.5 },
      { scenes: 0, enl: undefined }
    ])
    // Previews only of matching scenes, in reference order; each row points at its own.
    expect(previewed).toEqual([0, 1, 3])
    expect(readings.map((r) => r.reference.previews.map((i) => reference[previewed[i]!]!.caption))).toEqual([
      [reference[1]!.caption, reference[3]!.caption],
      [reference[0]!.caption],
      []
    ])
  })

  it("shares each image's first place among the prompts tied there", () => {
    expect(readings.map((r) => r.retrieved)).toEqual([
      [{ promptIndex: 0, share: 1 }],
      [{ promptIndex: 1, share: 0.75 }, { promptIndex: 0, share: 0.25 }],
      [{ promptIndex: 1, share: 1 }]
    ])
  })

  it("reads as one line per cell: the prompt retrieved first, its share, ✓ for the own prompt, the ENL; the reference's match or its absence", () => {
    expect(readings.map((r) => generatedReading(r, readings))).toEqual([
      "top-1 harbour 100\u00a0% ✓ · ENL 2",
      "top-1 river 75\u00a0% ✓ · ENL 2",
      "top-1 river 100\u00a0% · ENL 4"
    ])
    expect(readings.map(referenceReading)).toEqual(["harbour: 2 scenes · ENL 0.5", "river: 1 scene · ENL 0.5", "no airport scene in the reference set"])
    // Prompts tied for most first places are all named.
    const tied = { ...readings[0]!, retrieved: [{ promptIndex: 1, share: 0.5 }, { promptIndex: 0, share: 0.5 }] }
    expect(generatedReading(tied, readings)).toBe("top-1 river / harbour 50\u00a0% ✓ · ENL 2")
  })

  it("without prompt following, reads the ENL alone", () => {
    const plain = promptReadings({ generated, reference }).readings
    expect(plain.every((r) => r.retrieved === undefined)).toBe(true)
    expect(generatedReading(plain[0]!, plain)).toBe("ENL 2")
  })
})
