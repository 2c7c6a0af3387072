/**
 * Shared steps of the dashboard's browser tests: open a node's /ui, wait for what the page
 * shows (bounded), and keep a screenshot of each state at desktop and phone width, checking at
 * phone width that nothing scrolls sideways. (Page-side code is passed as strings: these tests
 * type-check without the DOM's lib, which clashes with Deno's own stream types.)
 */
import assert from "node:assert/strict";
import { type Browser, newPage, type Page, screenshot, VIEWPORTS } from "./browser.ts";

export const WAIT_MS = 20_000;

/** A page on `url`/ui that has polled the node once; `errors` as newPage collects them. */
export async function openDashboard(
  browser: Browser,
  url: string,
): Promise<{ page: Page; errors: string[] }> {
  const opened = await newPage(browser, "desktop");
  await opened.page.goto(`${url}/ui`);
  await opened.page.locator("#updated").filter({ hasText: /^updated/ }).waitFor({
    timeout: WAIT_MS,
  });
  return opened;
}

/** Waits until `selector`'s text matches `pattern`; answers the text. */
export async function waitForText(
  page: Page,
  selector: string,
  pattern: RegExp,
  timeout = WAIT_MS,
): Promise<string> {
  try {
    await page.locator(selector).filter({ hasText: pattern }).first().waitFor({ timeout });
  } catch (err) {
    const now = await page.textContent(selector).catch(() => null);
    throw new Error(`${selector} never matched ${pattern}; it reads ${JSON.stringify(now)}`, {
      cause: err,
    });
  }
  return (await page.textContent(selector)) ?? "";
}

/**
 * Screenshots NAME at phone then desktop width (`.grove-test/screenshots/NAME-phone.png`,
 * `NAME-desktop.png`), asserting the phone layout has no horizontal scroll.
 */
export async function shoot(page: Page, name: string): Promise<string[]> {
  await page.setViewportSize(VIEWPORTS.phone);
  const width = Number(await page.evaluate("document.documentElement.scrollWidth"));
  assert.ok(width <= VIEWPORTS.phone.width, `${name}: the page is ${width} px wide at phone width`);
  const phone = await screenshot(page, name);
  await page.setViewportSize(VIEWPORTS.desktop);
  return [phone, await screenshot(page, name)];
}

/**
 * The page's errors, less the browser's own log line for a route this node does not have
 * (404/501): the page says "not available on this node" for those itself.
 */
export function realErrors(errors: string[]): string[] {
  return errors.filter((e) =>
    !/Failed to load resource: the server responded with a status of (404|501)\b/.test(e)
  );
}
