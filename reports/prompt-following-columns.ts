import { promptFollowingEstimates } from "../framework/metrics/metric-catalog.ts"
import { chanceLevels, type RetrievalSetting } from "../framework/metrics/prompt-following.ts"
import type { MetricColumn } from "./metric-columns.ts"
import { formatValue } from "./number-format.ts"
import type { StudyResults } from "./study-results.ts"

/**
 * How the prompt-following table shows prompt following (framework/metrics/prompt-following.ts): the
 * retrieval columns carry their k and chance level when every strategy measured them among the
 * same prompts, and the notes say what the scores mean and why a strategy has none.
 */

const retrievalKindOf = (id: string) => promptFollowingEstimates.find((e) => e.metric.id === id)?.value

/** Whether a metric column is one of prompt following's (they have a table of their own). */
export const isPromptFollowing = (id: string) => retrievalKindOf(id) !== undefined

/** The P and k every scored strategy shares, or undefined when they differ or none measured any. */
export const sharedRetrieval = (results: StudyResults): RetrievalSetting | undefined => {
  const settings = results.strategies.flatMap((s) => {
    const record = s.evaluation.alignment?.promptFollowing
    return record === undefined || "absent" in record ? [] : [{ prompts: record.prompts, k: record.k }]
  })
  const first = settings[0]
  return first !== undefined && settings.every((s) => s.prompts === first.prompts && s.k === first.k) ? first : undefined
}

/** "top-k unseen ↑ k = 3, chance 0.375" for a retrieval column (label first, as every header); undefined for other columns. */
export const retrievalHeader = (column: MetricColumn, mark: string, results: StudyResults): string | undefined => {
  const kind = retrievalKindOf(column.id)
  if (kind === undefined || kind === "gap") return undefined
  const setting = sharedRetrieval(results)
  if (setting === undefined) return undefined
  return `${column.label} ${mark} ${kind === "topk" ? `k = ${setting.k}, ` : ""}chance ${formatValue(chanceLevels(setting)[kind])}`
}

/** The CLIP that judged a strategy's prompt following: its `alignment.promptFollowing` judge, else its alignment CLIP. */
const judgeOf = (strategy: StudyResults["strategies"][number]): string | undefined => {
  const alignment = strategy.evaluation.alignment
  return alignment?.promptFollowing === undefined ? undefined : alignment.judge ?? alignment.clip
}

/** "Judged by the CLIP ./scene-clip.", naming each judge's strategies when they differ; "" when none judged. */
export const judgeSentence = (results: StudyResults): string => {
  const judges = [...new Set(results.strategies.flatMap((s) => judgeOf(s) ?? []))]
  if (judges.length <= 1) return judges.length === 0 ? "" : `Judged by the CLIP ${judges[0]}.`
  const named = judges.map((judge) => `${judge} (${results.strategies.filter((s) => judgeOf(s) === judge).map((s) => s.name).join(", ")})`)
  return `Judged by the CLIPs ${named.join(", ")}.`
}

/** The table's notes on prompt following, when it shows any of its columns or a strategy lacks it. */
export const promptFollowingNotes = (results: StudyResults, columns: ReadonlyArray<MetricColumn>): ReadonlyArray<string> => {
  const shown = columns.some((c) => isPromptFollowing(c.id))
  const absent = results.strategies.flatMap((s) => {
    const record = s.evaluation.alignment?.promptFollowing
    return record !== undefined && "absent" in record ? [`${s.name}: ${record.absent}`] : []
  })
  const setting = sharedRetrieval(results)
  const judged = judgeSentence(results)
  return [
    ...(shown
      ? [
        "Prompt following, per split: gap = an image's CLIP score with its own prompt minus its mean CLIP score with the evaluation's other prompts " +
        "(≈ 0 for images that ignore their prompt, however SAR-like they look); top-1 / top-k = the share of images whose own prompt ranks first / " +
        "among the first k of the evaluation's P distinct prompts (a tie counts by its chance under a random order), beside the chance levels 1/P and k/P" +
        (setting === undefined ? " (P and k differ between strategies; see each evaluation.json)." : ` (P = ${setting.prompts}, k = ${setting.k}).`) +
        (judged === "" ? "" : ` ${judged}`)
      ]
      : []),
    ...(absent.length === 0 ? [] : [`No prompt-following score — ${absent.join("; ")}.`])
  ]
}
