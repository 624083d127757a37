/* In-page half of page-facts.ts: what the tests read off a rendered report (runs in Chromium). */
;(() => {
  const boxOf = (r) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom })
  const clean = (text) => (text ?? "").replace(/\s+/g, " ").trim()
  const charts = [...document.querySelectorAll("svg.chart")].map((svg) => ({
    id: svg.id,
    box: boxOf(svg.getBoundingClientRect()),
    visibleMarks: [...svg.querySelectorAll(".mark")].filter((m) => {
      const b = m.getBBox()
      return b.width > 0 || b.height > 0
    }).length,
    texts: [...svg.querySelectorAll("text")].map((t) => ({
      text: t.textContent ?? "",
      fontSize: parseFloat(getComputedStyle(t).fontSize),
      bold: Number(getComputedStyle(t).fontWeight) >= 600,
      width: t.getComputedTextLength(),
      box: boxOf(t.getBoundingClientRect())
    })),
    series: [...svg.querySelectorAll("[data-series]")].map((m) => ({
      name: m.getAttribute("data-series") ?? "",
      colour: m.tagName === "path" ? getComputedStyle(m).stroke : getComputedStyle(m).fill
    })),
    bands: [...svg.querySelectorAll("[data-band]")].filter((m) => m.getBBox().height > 0).map((m) => ({
      name: m.getAttribute("data-band") ?? "",
      colour: getComputedStyle(m).fill
    })),
    errorBars: [...svg.querySelectorAll("[data-error-bar]")].filter((m) => {
      const b = m.getBBox()
      return b.width > 0 || b.height > 0
    }).map((m) => m.getAttribute("data-error-bar") ?? "")
  }))
  const tables = [...document.querySelectorAll("table[data-table]")].map((table) => ({
    id: table.dataset.table ?? "",
    caption: clean(table.caption?.textContent ?? ""),
    header: [...table.tHead.rows[0].cells].map((c) => clean(c.textContent)),
    rows: [...table.tBodies[0].rows].map((r) => [...r.cells].map((c) => clean(c.textContent)))
  }))
  const strategyTable = document.querySelector("table[data-table=strategies]")
  const swatches = [...strategyTable.tBodies[0].rows].map((r) => ({
    name: clean(r.cells[0].textContent).replace(/ \(baseline\)$/, ""),
    colour: getComputedStyle(r.cells[0].querySelector(".swatch")).backgroundColor
  }))
  const metricRows = [...document.querySelector("table[data-table=metrics]").tBodies[0].rows]
  const bestCells = metricRows.flatMap((r, i) =>
    [...r.cells].flatMap((c, k) => (c.classList.contains("best") && Number(getComputedStyle(c).fontWeight) >= 600 ? [[i, k]] : []))
  )
  const boldCells = Object.fromEntries([...document.querySelectorAll("table[data-table]")].map((table) => [
    table.dataset.table,
    [...table.tBodies[0].rows].flatMap((r, i) => [...r.cells].flatMap((c, k) => (k > 0 && Number(getComputedStyle(c).fontWeight) >= 600 ? [[i, k]] : [])))
  ]))
  const changeTones = metricRows.flatMap((r, i) =>
    [...r.cells].flatMap((c, k) => {
      const change = c.querySelector(".change")
      return change === null ? [] : [{ row: i, column: k, tone: [...change.classList].find((x) => x !== "change") ?? "", text: clean(change.textContent) }]
    })
  )
  const images = [...document.images].map((img) => ({
    complete: img.complete,
    naturalWidth: img.naturalWidth,
    alt: img.alt,
    dataUri: img.src.startsWith("data:image/png;base64,")
  }))
  const gridTable = document.querySelector("table[data-grid=samples]")
  const grid = gridTable === null ? [] : [...gridTable.querySelectorAll("tr[data-prompt-row]")].map((row) => ({
    index: Number(row.dataset.promptRow),
    label: clean(row.querySelector("th").textContent),
    cells: [...row.querySelectorAll("td")].map((c) => [...c.querySelectorAll("img")].map((i) => i.alt)),
    readings: [...gridTable.querySelector(`tr[data-reading-row="${row.dataset.promptRow}"]`).cells].map((c) => clean(c.textContent))
  }))
  return { images, charts, tables, swatches, bestCells, boldCells, changeTones, grid }
})()
