/**
 * Approximate text widths, so charts can leave room for labels and keep them apart without a
 * browser. Advance widths (per mille of the font size) of printable ASCII are the larger of
 * DejaVu Sans and Liberation Sans (metric-compatible with Arial/Helvetica), the fonts the charts
 * ask for: estimates err on the wide side whichever of them the viewer has.
 */
const asciiWidths = [
  318,
  401,
  460,
  838,
  636,
  950,
  780,
  275,
  390,
  390,
  500,
  838,
  318,
  361,
  318,
  337,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  337,
  337,
  838,
  838,
  838,
  556,
  1015,
  684,
  686,
  722,
  770,
  667,
  611,
  778,
  752,
  295,
  500,
  667,
  557,
  863,
  748,
  787,
  667,
  787,
  722,
  667,
  611,
  732,
  684,
  989,
  685,
  667,
  685,
  390,
  337,
  390,
  838,
  556,
  500,
  613,
  635,
  550,
  635,
  615,
  352,
  635,
  634,
  278,
  278,
  579,
  278,
  974,
  634,
  612,
  635,
  635,
  411,
  521,
  392,
  634,
  592,
  818,
  592,
  592,
  525,
  636,
  337,
  636,
  838
]

/** Other characters (Greek, arrows, ·, −, …) are taken as wide as the widest Latin capitals. */
const otherWidth = 1000

/** Bold faces run wider; DejaVu Sans Bold is up to 16 % wider than regular on lower-case text. */
const boldFactor = 1.18

/** Width of `text` in pixels at `fontSize` pixels. */
export const textWidth = (text: string, fontSize: number, weight: "normal" | "bold" = "normal"): number => {
  let perMille = 0
  for (const char of text) {
    const code = char.codePointAt(0)!
    perMille += code >= 32 && code < 127 ? asciiWidths[code - 32]! : otherWidth
  }
  return (perMille / 1000) * fontSize * (weight === "bold" ? boldFactor : 1)
}

/** `text`, cut with an ellipsis at the end where needed so it fits in `maxWidth` pixels. */
export const fitText = (text: string, fontSize: number, maxWidth: number): string => {
  if (textWidth(text, fontSize) <= maxWidth) return text
  const chars = [...text]
  while (chars.length > 0 && textWidth(`${chars.join("")}…`, fontSize) > maxWidth) chars.pop()
  return chars.length === 0 ? "" : `${chars.join("").trimEnd()}…`
}

/**
 * A name cut in the middle where needed: strategy names of a grid share a prefix and differ at
 * the end ("…-lora-r4", "…-lora-r8"), or the other way round, so both ends stay visible.
 */
export const fitName = (text: string, fontSize: number, maxWidth: number): string => {
  if (textWidth(text, fontSize) <= maxWidth) return text
  const chars = [...text]
  let head = Math.ceil(chars.length / 2)
  let tail = Math.floor(chars.length / 2)
  const joined = () => `${chars.slice(0, head).join("")}…${chars.slice(chars.length - tail).join("")}`
  while (head + tail > 0 && textWidth(joined(), fontSize) > maxWidth) {
    if (head > tail) head--
    else tail--
  }
  return head + tail === 0 ? "" : joined()
}
