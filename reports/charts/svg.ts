/** What every chart shares: the font, escaping, and the outer <svg> element. */

export const fontFamily = "'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif"
export const fontSize = 12
export const smallFontSize = 11
export const textColour = "#222"
export const gridColour = "#e3e3e3"
export const axisColour = "#666"

export const escapeXml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Coordinates rounded to 0.01 px: enough for any screen, and the files stay small. */
export const px = (value: number): string => String(Math.round(value * 100) / 100)

export interface SvgChart {
  /** Identifies the chart in the page (the element id) and its file under images/charts/. */
  readonly id: string
  /** Standalone SVG markup, inline-able in HTML and valid as an .svg file. */
  readonly svg: string
  /** What the chart shows, in words (tooltip, screen readers, figure captions). */
  readonly label: string
  readonly width: number
  readonly height: number
}

/** The outer element; `label` is read by screen readers and shown as the tooltip. */
export const svgDocument = (id: string, width: number, height: number, label: string, body: string): SvgChart => ({
  id,
  label,
  width,
  height,
  svg: `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="${escapeXml(id)}" width="${px(width)}" height="${px(height)}" ` +
    `viewBox="0 0 ${px(width)} ${px(height)}" role="img" aria-label="${escapeXml(label)}" ` +
    `font-family="${escapeXml(fontFamily)}" font-size="${fontSize}" fill="${textColour}">` +
    `<title>${escapeXml(label)}</title><rect class="background" width="100%" height="100%" fill="#fff"/>${body}</svg>`
})

export interface TextOptions {
  readonly anchor?: "start" | "middle" | "end"
  readonly size?: number
  readonly rotate?: number
  readonly weight?: "bold"
  readonly className?: string
  /** Vertical alignment of the text box on y. */
  readonly baseline?: "middle" | "hanging" | "alphabetic"
  readonly fill?: string
}

export const svgText = (x: number, y: number, text: string, options: TextOptions = {}): string => {
  const attributes = [
    `x="${px(x)}"`,
    `y="${px(y)}"`,
    options.anchor === undefined || options.anchor === "start" ? "" : `text-anchor="${options.anchor}"`,
    options.size === undefined ? "" : `font-size="${options.size}"`,
    options.weight === undefined ? "" : `font-weight="${options.weight}"`,
    options.baseline === undefined || options.baseline === "alphabetic" ? "" : `dominant-baseline="${options.baseline === "middle" ? "central" : "hanging"}"`,
    options.rotate === undefined ? "" : `transform="rotate(${options.rotate} ${px(x)} ${px(y)})"`,
    options.fill === undefined ? "" : `fill="${options.fill}"`,
    `class="${options.className ?? "label"}"`
  ].filter((a) => a.length > 0)
  return `<text ${attributes.join(" ")}>${escapeXml(text)}</text>`
}
