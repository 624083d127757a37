import type { SvgChart } from "./charts/svg.ts"
import { type ConditionedSection, conditionedNote } from "./conditioned-rows.ts"
import { gridNote, type ImageGrid } from "./image-grid.ts"
import { readingsNote } from "./sample-readings.ts"
import { bandCaption, differencesIntroduction, noComparisons, type ReportContent, trainingNote } from "./report-content.ts"
import { changeText, type ReportTable, type TableCell } from "./tables/report-table.ts"

/**
 * report.md: the same tables as the HTML page (same cell text, significant bests in bold), for pasting
 * into papers and notes. Charts and grid images are files under images/ next to it: Markdown
 * viewers (GitHub among them) drop data: URIs.
 */

/**
 * Backslash escapes (CommonMark) for characters that would change how a cell reads: a pipe ends
 * the cell, `<SAR>` would be taken for an HTML tag, brackets for a link, `*` and `_` for emphasis.
 */
const escapeCell = (text: string) => text.replace(/[\\|<>[\]*_`]/g, (c) => `\\${c}`).replace(/\s*\n\s*/g, " ")

/** Prose (notes, summary): the same escapes, except inside `code spans`, which stay as written. */
const escapeProse = (text: string) => text.split(/(`[^`]*`)/).map((part, i) => (i % 2 === 1 ? part : part.replace(/[\\<>[\]*_]/g, (c) => `\\${c}`))).join("")

const cellMarkdown = (cell: TableCell): string => {
  let text = cell.code ? `\`${cell.text}\`` : escapeCell(cell.text)
  if (cell.link !== undefined) text = `[${text}](${cell.link})`
  if (cell.best) text = `**${text}**`
  if (cell.interval !== undefined) text += ` ${escapeCell(cell.interval)}`
  if (cell.change !== undefined) text += ` (${escapeCell(changeText(cell.change))})`
  return text
}

export const tableMarkdown = (table: ReportTable): string =>
  [
    `**${escapeCell(table.caption)}**`,
    "",
    `| ${table.header.map(escapeCell).join(" | ")} |`,
    `|${table.header.map(() => " --- ").join("|")}|`,
    ...table.rows.map((row) => `| ${row.map(cellMarkdown).join(" | ")} |`),
    "",
    ...table.notes.flatMap((n) => [escapeProse(n), ""])
  ].join("\n")

export const chartFile = (chart: SvgChart) => `images/charts/${chart.id}.svg`

const chartMarkdown = (chart: SvgChart) => `![${chart.label}](${chartFile(chart)})\n`

const gridMarkdown = (grid: ImageGrid): string => {
  const header = `| prompt | ${grid.columns.map((c) => escapeCell(c.label)).join(" | ")} |`
  const rule = `|${[" --- ", ...grid.columns.map(() => " --- ")].join("|")}|`
  const rows = grid.rows.flatMap(({ cells, prompt, seeds }) => {
    const images = cells.map((cell) => (cell.images.length === 0 ? "–" : cell.images.map((i) => `![${escapeCell(i.caption)}](${i.target})`).join(" ")))
    const seedText = seeds.length === 0 ? "" : ` (seed${seeds.length === 1 ? "" : "s"} ${seeds.join(", ")})`
    return [
      `| ${prompt.split}: ${escapeCell(prompt.text)}${seedText} | ${images.join(" | ")} |`,
      `| ↳ reading | ${cells.map((c) => escapeCell(c.reading) || "–").join(" | ")} |`
    ]
  })
  return [escapeProse(gridNote(grid)), "", escapeProse(readingsNote), "", header, rule, ...rows, ""].join("\n")
}

const conditionedMarkdown = (section: ConditionedSection): string => {
  const link = (image: { readonly target: string; readonly caption: string }) => `![${escapeCell(image.caption)}](${image.target})`
  return [
    `### ${escapeProse(section.label)}: conditioned samples`,
    "",
    escapeProse(conditionedNote(section)),
    "",
    ...(section.legend === undefined ? [] : [`Label map colours: ${section.legend.map((c) => `${escapeProse(c.name)} ${c.colour}`).join(", ")}.`, ""]),
    "| scene | condition | true SAR | generated |",
    "| --- | --- | --- | --- |",
    ...section.rows.map((row) =>
      `| ${row.scene}: ${escapeCell(row.id)} | ${link(row.condition)} | ${link(row.truth)} | ${row.generated.map(link).join(" ") || "–"} |`
    ),
    ""
  ].join("\n")
}

export const markdownReport = (content: ReportContent): string => {
  const { tables } = content
  const parts = [
    `# ${content.study}: comparison report`,
    "",
    ...content.summary.flatMap((line) => [escapeProse(line), ""]),
    "## 1. Strategies",
    "",
    tableMarkdown(tables.strategies),
    "## 2. Metrics",
    "",
    tableMarkdown(tables.metrics),
    ...(tables.promptFollowing === undefined ? [] : [tableMarkdown(tables.promptFollowing)]),
    ...tables.paired.map(tableMarkdown),
    ...(tables.replicates === undefined ? [] : [tableMarkdown(tables.replicates)]),
    "## 3. Which differences are real",
    "",
    escapeProse(differencesIntroduction),
    "",
    ...(content.verdicts.tables.length === 0 && content.verdicts.notCompared.length === 0
      ? [escapeProse(noComparisons), ""]
      : [...content.verdicts.tables.map(tableMarkdown), ...content.verdicts.notCompared.flatMap((n) => [escapeProse(n), ""])]),
    "## 4. Amplitude distributions",
    "",
    ...content.distributions.flatMap((d) => [escapeProse(d.sentence), "", chartMarkdown(d.histogram), chartMarkdown(d.cdf)]),
    escapeProse(bandCaption),
    "",
    "## 5. Texture (GLCM)",
    "",
    ...content.glcmPanels.map(chartMarkdown),
    tableMarkdown(tables.texture),
    "## 6. Prompt alignment",
    "",
    ...(content.alignment === undefined || tables.alignment === undefined
      ? ["Prompt alignment was not evaluated (no CLIP model declared under evaluate.alignment).", ""]
      : [chartMarkdown(content.alignment), tableMarkdown(tables.alignment)]),
    "## 7. Samples",
    "",
    gridMarkdown(content.grid),
    ...content.conditioned.map(conditionedMarkdown),
    "## 8. Training curves",
    "",
    ...(content.trainingCurves.length === 0
      ? ["No strategy of this study trains (or no training log is left in the cache).", ""]
      : [escapeProse(trainingNote), "", ...content.trainingCurves.map(chartMarkdown)]),
    ...(content.validationImages.length === 0 ? [] : [
      "Validation images sampled during training (train.validationPrompts), in each train step's output:",
      "",
      ...content.validationImages.map((v) => `- ${escapeProse(v.strategy)}, step ${v.step}, “${escapeProse(v.prompt)}”: \`${v.file}\``),
      ""
    ]),
    "## 9. Run facts",
    "",
    tableMarkdown(tables.runFacts)
  ]
  return `${parts.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`
}
