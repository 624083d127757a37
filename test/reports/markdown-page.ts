/**
 * report.md as a reader sees it: rendered by marked (GitHub-flavoured Markdown, tables included)
 * into a page whose base is the report folder, so its relative image links resolve, then read in
 * the browser.
 */
import { readFile, writeFile } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import { marked } from "marked"
import type { Page } from "playwright-core"

/** Writes the rendered page into `folder` (never into the report folder); returns its path. */
export const renderMarkdownPage = async (markdownFile: string, folder: string): Promise<string> => {
  const body = await marked.parse(await readFile(markdownFile, "utf8"), { gfm: true })
  const file = join(folder, `${basename(dirname(markdownFile))}-report.md.html`)
  const base = pathToFileURL(`${dirname(markdownFile)}/`).href
  await writeFile(file, `<!doctype html><html><head><meta charset="utf-8"><base href="${base}"><title>report.md</title></head><body>${body}</body></html>\n`)
  return file
}

export interface MarkdownFacts {
  /** Tables preceded by a bold caption paragraph: the report's data tables. */
  readonly tables: ReadonlyArray<{ readonly caption: string; readonly header: ReadonlyArray<string>; readonly rows: ReadonlyArray<ReadonlyArray<string>> }>
  readonly images: ReadonlyArray<{ readonly src: string; readonly loaded: boolean }>
}

export const markdownFacts = async (page: Page): Promise<MarkdownFacts> =>
  (await page.evaluate(await readFile(new URL("./markdown-facts.browser.js", import.meta.url), "utf8"))) as MarkdownFacts
