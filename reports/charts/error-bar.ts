import { escapeXml, px, textColour } from "./svg.ts"

/**
 * An interval drawn over a bar: a line from `from` to `to` (pixel coordinates along the value
 * axis) at `at` across it, with caps `cap` wide. Dark, so it reads over any strategy colour.
 */
export const errorBar = (at: number, from: number, to: number, cap: number, orientation: "vertical" | "horizontal", label: string): string => {
  const half = cap / 2
  const segments: ReadonlyArray<readonly [number, number, number, number]> = orientation === "vertical"
    ? [[at, from, at, to], [at - half, from, at + half, from], [at - half, to, at + half, to]]
    : [[from, at, to, at], [from, at - half, from, at + half], [to, at - half, to, at + half]]
  const d = segments.map(([x1, y1, x2, y2]) => `M${px(x1)} ${px(y1)}L${px(x2)} ${px(y2)}`).join("")
  return `<path class="error-bar" data-error-bar="${escapeXml(label)}" d="${d}" stroke="${textColour}" stroke-width="1.2" fill="none"/>`
}
