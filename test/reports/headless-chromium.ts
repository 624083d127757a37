/** Debian's chromium driven by playwright-core, as the done-when asks: headless, fresh profile. */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core"
import { requirePrerequisite } from "../support/prerequisites.ts"

// Here, not per test: a machine without chromium fails the test file once, with the line that says why.
requirePrerequisite("chromium")

export const chromiumPath = "/usr/bin/chromium"

export interface OpenBrowser {
  readonly context: BrowserContext
  readonly close: () => Promise<void>
}

export const launchChromium = async (): Promise<OpenBrowser> => {
  const profile = await mkdtemp(join(tmpdir(), "sardine-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run"
    ]
  })
  return {
    context,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    }
  }
}

/** A page that records every console error, uncaught exception and failed request while it loads `url`. */
export const openPage = async (browser: OpenBrowser, url: string): Promise<{ page: Page; problems: Array<string> }> => {
  const page = await browser.context.newPage()
  const problems: Array<string> = []
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()}`)
  })
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.url().slice(0, 120)} ${request.failure()?.errorText ?? ""}`))
  await page.goto(url, { waitUntil: "load" })
  return { page, problems }
}
