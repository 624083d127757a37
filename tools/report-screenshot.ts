/**
 * A PNG of a report's first screen(s), taken in headless Chromium (Debian's, driven by playwright-core),
 * for the README: docs/demo-report.png comes from
 *
 *   npx sardine run experiments/demo/study.ts        # prints "report: <path>"
 *   npx tsx tools/report-screenshot.ts <path>/report.html docs/demo-report.png [--height 1800]
 */
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { chromium } from "playwright-core"

const [report, out] = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && all[i - 1] !== "--height")
const heightAt = process.argv.indexOf("--height")
const height = heightAt >= 0 ? Number(process.argv[heightAt + 1]) : 1800
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium"
if (report === undefined || out === undefined || !Number.isInteger(height) || height <= 0) {
  console.error("usage: npx tsx tools/report-screenshot.ts <report.html> <out.png> [--height PIXELS]")
  process.exit(2)
}
for (const [what, path] of [["report", report], ["chromium (set CHROMIUM)", executablePath]] as const) {
  if (!existsSync(path)) {
    console.error(`${what} not found: ${path}`)
    process.exit(1)
  }
}

const profile = await mkdtemp(join(tmpdir(), "sardine-screenshot-"))
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
})
try {
  const page = await context.newPage()
  await page.goto(pathToFileURL(resolve(report)).href, { waitUntil: "load" })
  await page.screenshot({ path: out, fullPage: false })
  console.log(`wrote ${out} (1280 × ${height})`)
} finally {
  await context.close()
  await rm(profile, { recursive: true, force: true })
}
