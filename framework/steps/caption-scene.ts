/**
 * The scene a prompt or caption names, so that a prompt's row in the report's sample grid shows
 * real scenes of the same kind. Captions and prompts describe a scene the same way: "<SAR> image of"
 * (any modality word or token), then the scene — "a harbour", "farmland", "open water" — then what
 * qualifies it ("with two ships", "crossed by a road", "near a bridge"). The scene is the words after
 * "image of" up to the first qualifying word, articles dropped, lower case: "a harbour with a ship
 * near a bridge" and "SAR image of a harbour with urban blocks" both name "harbour".
 * Read from the text only, so it holds for any captioned dataset, not just the synthetic one
 * (test/reports checks it against every scene kind the synthetic generator draws).
 */

/** Words that end the scene's name and start what qualifies it. */
const qualifiers = new Set(["with", "crossed", "near", "between", "surrounded", "along", "by", "and", "on", "in", "at", "of", "under", "over", "beside"])
const articles = new Set(["a", "an", "the"])

/** The scene `text` names, or undefined when it names none (empty, or nothing before a qualifier). */
export const sceneOf = (text: string): string | undefined => {
  const lower = text.toLowerCase().replace(/[.,;:!?()"“”]/g, " ")
  const at = lower.search(/\bimage of\b/)
  const description = at < 0 ? lower : lower.slice(at + "image of".length)
  const head: Array<string> = []
  for (const word of description.split(/\s+/).filter((w) => w !== "")) {
    if (qualifiers.has(word)) break
    if (!articles.has(word)) head.push(word)
  }
  return head.length === 0 ? undefined : head.join(" ")
}
