import type { SvgChart } from "./charts/svg.ts"
import { escapeXml } from "./charts/svg.ts"
import { type ConditionedSection, conditionedNote } from "./conditioned-rows.ts"
import { gridNote, type ImageGrid } from "./image-grid.ts"
import { readingsNote } from "./sample-readings.ts"
import { bandCaption, differencesIntroduction, noComparisons, type ReportContent, trainingNote } from "./report-content.ts"
import { changeText, type ReportTable, type TableCell } from "./tables/report-table.ts"

/**
 * report.html: one self-contained page. Charts are inline SVG and grid images are data URIs, so
 * the single file opens offline, survives being mailed or logged as one MLflow artifact, and
 * never shows a broken image because a folder was left behind.
 */

const style = `
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 8px; } h2 { font-size: 20px; margin: 36px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 24px 0 6px; }
p.lead { font-size: 15px; margin: 4px 0; } p.note { font-size: 12px; color: #555; margin: 4px 0; }
nav a { margin-right: 14px; font-size: 13px; }
.table-scroll { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
table.data caption { text-align: left; font-weight: bold; padding: 4px 0; }
table.data th, table.data td { border-bottom: 1px solid #e4e4e4; padding: 4px 9px; text-align: left; white-space: nowrap; vertical-align: top; }
table.data th { background: #f3f3f3; }
table.data thead th { white-space: normal; overflow-wrap: anywhere; max-width: 160px; vertical-align: bottom; }
table.data tbody th { white-space: normal; overflow-wrap: anywhere; min-width: 170px; max-width: 380px; }
td.best { font-weight: bold; background: #eaf5e4; }
.interval { font-size: 11px; color: #666; }
.change { font-size: 11px; } .change.better { color: #2d7a2d; } .change.worse { color: #b03a2e; } .change.same, .change.unclear { color: #777; }
/* The estimate tables stack value, interval and change: narrower columns, so fewer scroll sideways. */
table[data-table=metrics] .interval, table[data-table=metrics] .change,
table[data-table=prompt-following] .interval, table[data-table=prompt-following] .change { display: block; }
td.verdict-better { color: #2d7a2d; font-weight: bold; } td.verdict-worse { color: #b03a2e; font-weight: bold; } td.verdict-unclear { color: #777; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
code { font-family: 'DejaVu Sans Mono', 'Liberation Mono', monospace; font-size: 12px; }
figure { margin: 12px 0; } figcaption { font-size: 12px; color: #555; max-width: 720px; }
.small-multiples { display: flex; flex-wrap: wrap; gap: 8px 18px; }
table.image-grid { border-collapse: collapse; font-size: 12px; }
table.image-grid th, table.image-grid td { padding: 4px; vertical-align: top; text-align: center; overflow-wrap: anywhere; }
table.image-grid th.prompt { text-align: left; font-weight: normal; min-width: 150px; max-width: 220px; overflow-wrap: normal; }
table.image-grid img { width: 112px; height: auto; image-rendering: pixelated; display: block; margin: 0 auto 2px; }
.cell-images { display: flex; gap: 3px; justify-content: center; }
table[data-grid] .cell-images { flex-wrap: wrap; max-width: 124px; margin: 0 auto; }
table[data-grid] .cell-images img { width: 60px; margin: 0; }
table[data-grid] th.prompt .caption { max-width: none; margin: 2px 0 0; }
table[data-grid] tr.reading td { font-size: 10px; color: #444; max-width: 124px; padding-top: 0; border-bottom: 1px solid #e4e4e4; }
.caption { font-size: 10px; color: #666; max-width: 112px; display: block; margin: 0 auto; }
.split { font-size: 10px; text-transform: uppercase; padding: 1px 5px; border-radius: 3px; background: #e8eef7; }
.split.unseen { background: #fbeee0; }
`

/** Notes may quote commands in backticks; they become <code>. */
const noteHtml = (note: string) => `<p class="note">${escapeXml(note).replace(/`([^`]+)`/g, "<code>$1</code>")}</p>`

const cellHtml = (cell: TableCell, tag: "td" | "th"): string => {
  let inner = escapeXml(cell.text)
  if (cell.code) inner = `<code>${inner}</code>`
  if (cell.link !== undefined) inner = `<a href="${escapeXml(cell.link)}">${inner}</a>`
  if (cell.colour !== undefined) inner = `<span class="swatch" style="background:${cell.colour}"></span>${inner}`
  if (cell.interval !== undefined) inner += ` <span class="interval">${escapeXml(cell.interval)}</span>`
  if (cell.change !== undefined) inner += ` <span class="change ${cell.change.tone}">(${escapeXml(changeText(cell.change))})</span>`
  const classes = [...(cell.best ? ["best"] : []), ...(cell.verdict === undefined ? [] : [`verdict-${cell.verdict}`])]
  return `<${tag}${classes.length === 0 ? "" : ` class="${classes.join(" ")}"`}>${inner}</${tag}>`
}

export const tableHtml = (table: ReportTable): string =>
  `<div class="table-scroll"><table class="data" data-table="${table.id}"><caption>${escapeXml(table.caption)}</caption>` +
  `<thead><tr>${table.header.map((h) => `<th>${escapeXml(h)}</th>`).join("")}</tr></thead>` +
  `<tbody>${table.rows.map((row) => `<tr>${row.map((c, i) => cellHtml(c, i === 0 ? "th" : "td")).join("")}</tr>`).join("")}</tbody></table></div>` +
  table.notes.map(noteHtml).join("")

const figure = (chart: SvgChart, caption: string) => `<figure>${chart.svg}<figcaption>${escapeXml(caption)}</figcaption></figure>`

const gridHtml = (grid: ImageGrid, images: ReadonlyMap<string, string>): string => {
  const head = `<tr><th class="prompt">prompt</th>${
    grid.columns.map((c) => `<th><span class="swatch" style="background:${c.colour}"></span>${escapeXml(c.label)}</th>`).join("")
  }</tr>`
  const body = grid.rows.map(({ cells, prompt, seeds }) => {
    const label = `<span class="split ${prompt.split}">${prompt.split}</span> ${escapeXml(prompt.text)}` +
      prompt.variants.map((v) => `<span class="caption">also: ${escapeXml(v)}</span>`).join("") +
      (seeds.length === 0 ? "" : `<span class="caption">seed${seeds.length === 1 ? "" : "s"} ${seeds.join(", ")}</span>`)
    const tds = cells.map((cell, c) => {
      if (cell.images.length === 0) return `<td data-column="${c}">–</td>`
      const imgs = cell.images.map((image) => `<img src="${images.get(image.target)}" alt="${escapeXml(image.caption)}" title="${escapeXml(image.caption)}">`)
        .join("")
      return `<td data-column="${c}"><div class="cell-images">${imgs}</div></td>`
    })
    const readings = cells.map((cell, c) => `<td data-column="${c}">${escapeXml(cell.reading)}</td>`)
    return `<tr data-prompt-row="${prompt.index}"><th class="prompt" rowspan="2">${label}</th>${tds.join("")}</tr>` +
      `<tr class="reading" data-reading-row="${prompt.index}">${readings.join("")}</tr>`
  })
  return `<div class="table-scroll"><table class="image-grid" data-grid="samples">${head}${body.join("")}</table></div>`
}

/** One conditioned strategy's rows: condition | true SAR | generated, its label map's legend above. */
const conditionedHtml = (section: ConditionedSection, images: ReadonlyMap<string, string>): string => {
  const img = (image: { readonly target: string; readonly caption: string }) =>
    `<img src="${images.get(image.target)}" alt="${escapeXml(image.caption)}" title="${escapeXml(image.caption)}">`
  const legend = section.legend === undefined ?
    "" :
    `<p class="note">${section.legend.map((c) => `<span class="swatch" style="background:${c.colour}"></span>${escapeXml(c.name)}`).join(" &nbsp; ")}</p>`
  const head = `<tr><th class="prompt">scene</th><th>condition</th><th>true SAR</th><th>generated</th></tr>`
  const body = section.rows.map((row) =>
    `<tr><th class="prompt">${row.scene}: ${escapeXml(row.id)}</th><td>${img(row.condition)}</td><td>${img(row.truth)}</td>` +
    `<td><div class="cell-images">${row.generated.map(img).join("") || "–"}</div>` +
    `<span class="caption">${escapeXml(row.generated.map((g) => g.caption.replace(/^.*, /, "")).join(", "))}</span></td></tr>`
  )
  return `<h3><span class="swatch" style="background:${section.colour}"></span>${escapeXml(section.label)}: conditioned samples</h3>${
    noteHtml(conditionedNote(section))
  }${legend}` +
    `<div class="table-scroll"><table class="image-grid" data-conditioned="${escapeXml(section.strategy)}">${head}${body.join("")}</table></div>`
}

const sections = [
  ["strategies", "Strategies"],
  ["metrics", "Metrics"],
  ["differences", "Which differences are real"],
  ["amplitude", "Amplitude distributions"],
  ["texture", "Texture (GLCM)"],
  ["alignment", "Prompt alignment"],
  ["samples", "Samples"],
  ["training", "Training curves"],
  ["run-facts", "Run facts"]
] as const

/** The page; `images` maps each grid image's target path to its data URI. */
export const htmlReport = (content: ReportContent, images: ReadonlyMap<string, string>): string => {
  const heading = (id: (typeof sections)[number][0]) => {
    const n = sections.findIndex(([s]) => s === id)
    return `<h2 id="${id}">${n + 1}. ${sections[n]![1]}</h2>`
  }
  const { tables } = content
  const parts = [
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${escapeXml(`${content.study}: sardine comparison report`)}</title><style>${style}</style></head><body><main>`,
    `<h1>${escapeXml(content.study)}: comparison report</h1>`,
    ...content.summary.map((line) => `<p class="lead">${escapeXml(line)}</p>`),
    `<nav>${sections.map(([id, title]) => `<a href="#${id}">${escapeXml(title)}</a>`).join("")}</nav>`,
    heading("strategies"),
    tableHtml(tables.strategies),
    heading("metrics"),
    tableHtml(tables.metrics),
    ...(tables.promptFollowing === undefined ? [] : [tableHtml(tables.promptFollowing)]),
    ...tables.paired.map(tableHtml),
    ...(tables.replicates === undefined ? [] : [tableHtml(tables.replicates)]),
    heading("differences"),
    `<p>${escapeXml(differencesIntroduction)}</p>`,
    ...(content.verdicts.tables.length === 0 && content.verdicts.notCompared.length === 0
      ? [`<p>${escapeXml(noComparisons)}</p>`]
      : [...content.verdicts.tables.map(tableHtml), ...content.verdicts.notCompared.map(noteHtml)]),
    heading("amplitude"),
    ...content.distributions.flatMap((d) => [
      `<p>${escapeXml(d.sentence)}</p>`,
      figure(d.histogram, `Histogram of the pooled pixel values of each set (fraction of pixels per bin, log scale); the real set in black. ${bandCaption}`),
      figure(
        d.cdf,
        `Empirical cumulative distribution of the same values; a gap between curves is what Kolmogorov–Smirnov (largest) and Wasserstein-1 (area) measure. ${bandCaption}`
      )
    ]),
    heading("texture"),
    `<div class="small-multiples">${content.glcmPanels.map((p) => p.svg).join("")}</div>`,
    `<p class="note">Each panel: one GLCM property; the dashed line marks the real set's value; error bars: each strategy's confidence interval.</p>`,
    tableHtml(tables.texture),
    heading("alignment"),
    ...(content.alignment === undefined || tables.alignment === undefined
      ? [`<p>Prompt alignment was not evaluated (no CLIP model declared under evaluate.alignment).</p>`]
      : [
        figure(content.alignment, "Mean CLIP score of each strategy's samples over the prompts of each split; error bars: its confidence interval."),
        tableHtml(tables.alignment)
      ]),
    heading("samples"),
    `<p class="note">${escapeXml(gridNote(content.grid))}</p>`,
    `<p class="note">${escapeXml(readingsNote)}</p>`,
    gridHtml(content.grid, images),
    ...content.conditioned.map((section) => conditionedHtml(section, images)),
    heading("training"),
    ...(content.trainingCurves.length === 0
      ? [`<p>No strategy of this study trains (or no training log is left in the cache).</p>`]
      : [
        `<p class="note">${escapeXml(trainingNote)}</p>`,
        ...content.trainingCurves.map((c) => figure(c, `${c.label}.`))
      ]),
    ...(content.validationImages.length === 0 ? [] : [
      `<p>Validation images sampled during training (train.validationPrompts), in each train step's output:</p>`,
      `<ul>${
        content.validationImages.map((v) => `<li>${escapeXml(v.strategy)}, step ${v.step}, “${escapeXml(v.prompt)}”: <code>${escapeXml(v.file)}</code></li>`)
          .join("")
      }</ul>`
    ]),
    heading("run-facts"),
    tableHtml(tables.runFacts),
    `</main></body></html>`
  ]
  return `${parts.join("\n")}\n`
}
