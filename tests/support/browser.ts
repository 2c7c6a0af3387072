/**
 * Real headless Chromium for the dashboard tests: Debian's `chromium` package (or
 * $GROVE_CHROMIUM), driven by playwright-core with executablePath, since Playwright's own
 * browser downloads cannot be fetched here. Screenshots land in .grove-test/screenshots/, kept
 * as the tests' artifacts, at desktop and phone width.
 */
import { existsSync, mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import type { Browser, Page } from "playwright-core";

export type { Browser, Page };

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export const SCREENSHOT_DIR = new URL("../../.grove-test/screenshots/", import.meta.url);

export function chromiumPath(): string {
  const chosen = Deno.env.get("GROVE_CHROMIUM") ?? CANDIDATES.find((p) => existsSync(p));
  if (chosen === undefined) {
    throw new Error(
      "no Chromium found: install Debian's chromium package (.ci/run does) or set GROVE_CHROMIUM",
    );
  }
  return chosen;
}

export async function openBrowser(): Promise<Browser> {
  return await chromium.launch({
    executablePath: chromiumPath(),
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

export const VIEWPORTS = {
  desktop: { width: 1280, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

export type Viewport = keyof typeof VIEWPORTS;

/** A page whose console errors, page errors and CSP violations are collected in `errors`. */
export async function newPage(
  browser: Browser,
  viewport: Viewport = "desktop",
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: VIEWPORTS[viewport] });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`page: ${err.message}`));
  return { page, errors };
}

/** Saves `.grove-test/screenshots/<name>-<viewport>.png`; answers its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const width = page.viewportSize()?.width ?? 0;
  const viewport = width <= VIEWPORTS.phone.width ? "phone" : "desktop";
  const path = new URL(`${name}-${viewport}.png`, SCREENSHOT_DIR).pathname;
  await page.screenshot({ path, fullPage: true });
  return path;
}
