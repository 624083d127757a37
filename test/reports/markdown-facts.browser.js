/* In-page half of markdown-page.ts: the tables and images of the rendered report.md (runs in Chromium). */
;(() => {
  const clean = (text) => (text ?? "").replace(/\s+/g, " ").trim()
  const tables = [...document.querySelectorAll("table")].flatMap((table) => {
    const before = table.previousElementSibling
    const caption = before !== null && before.tagName === "P" && before.children.length === 1 && before.children[0].tagName === "STRONG"
      ? clean(before.textContent)
      : undefined
    if (caption === undefined) return []
    return [{
      caption,
      header: [...table.tHead.rows[0].cells].map((c) => clean(c.textContent)),
      rows: [...table.tBodies[0].rows].map((r) => [...r.cells].map((c) => clean(c.textContent)))
    }]
  })
  const images = [...document.images].map((img) => ({ src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0 }))
  return { tables, images }
})()
