import type { StrategyResult } from "./study-results.ts"

/**
 * The prompts of a study, one row each. Strategies of a study sample the same prompts, but the
 * text may differ between them (a learned-token strategy writes "{token} image of …" where the
 * others write "SAR image of …"), so rows line up by position: a strategy's k-th distinct prompt
 * belongs to row k.
 */
export interface PromptRow {
  readonly index: number
  /** The first strategy's text for this row. */
  readonly text: string
  /** Other texts strategies used for the same row. */
  readonly variants: ReadonlyArray<string>
  readonly split: "seen" | "unseen"
}

/** Each strategy's distinct declared prompts, in sampling order. */
export const promptsOf = (strategy: StrategyResult): ReadonlyArray<{ readonly text: string; readonly split: "seen" | "unseen" }> => {
  const seen = new Map<string, "seen" | "unseen">()
  for (const p of strategy.evaluation.previews.generated) if (!seen.has(p.prompt)) seen.set(p.prompt, p.split)
  return [...seen].map(([text, split]) => ({ text, split }))
}

export const promptRows = (strategies: ReadonlyArray<StrategyResult>): ReadonlyArray<PromptRow> => {
  const lists = strategies.map(promptsOf)
  const count = Math.max(0, ...lists.map((l) => l.length))
  return Array.from({ length: count }, (_, index) => {
    const texts = lists.map((l) => l[index]).filter((p) => p !== undefined)
    const distinct = [...new Set(texts.map((p) => p.text))]
    // index is below the longest list's length, so some strategy has a prompt there.
    return { index, text: distinct[0]!, variants: distinct.slice(1), split: texts[0]!.split }
  })
}
