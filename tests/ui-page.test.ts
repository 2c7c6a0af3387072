/**
 * The dashboard in real headless Chromium, against a node app on loopback: the page boots from
 * its own origin only, polls the node, asks for an --api-key once in its own form, and its CSP
 * stops script that model output or a member's name could smuggle in.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createNodeApp } from "../web/mod.ts";
import { fakeService } from "./support/fake-service.ts";
import { newPage, openBrowser, type Page, screenshot } from "./support/browser.ts";
import { realErrors } from "./support/ui-pages.ts";

// Page-side code goes as strings (page.evaluate): this file is typed for Deno, not the DOM.
/**
 * The page has polled the node once. A locator wait: the page's CSP refuses the string evaluation
 * page.waitForFunction falls back to when its first look finds nothing.
 */
const polled = (page: Page) => page.locator("#updated", { hasText: /^updated/ }).waitFor();

function serveApp(apiKey?: string) {
  const app = createNodeApp({ service: fakeService(), apiKey });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

Deno.test("ui page: boots from its own origin, polls the node and runs nothing inline", async () => {
  const { url, server } = serveApp();
  const browser = await openBrowser();
  try {
    const { page, errors } = await newPage(browser);
    const outside: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(url)) outside.push(r.url());
    });
    await page.goto(`${url}/ui`);
    await polled(page);
    assert.equal(await page.isVisible("#error"), false, "the poll worked");
    // What an injected <script> (say, from model output set as HTML by mistake) would do: CSP
    // refuses it, so the global it sets never appears.
    const ran = await page.evaluate(`(() => {
      const s = document.createElement("script");
      s.textContent = "window.injected = true";
      document.body.appendChild(s);
      return window.injected === true;
    })()`);
    assert.equal(ran, false, "inline script is blocked by the page's CSP");
    assert.deepEqual(outside, [], "no request leaves the node's origin");
    await screenshot(page, "ui-boot");
    // A fake-service node has no model store or relay: those panels say "not available".
    assert.ok(
      realErrors(errors).every((e) => /Content Security Policy/i.test(e)),
      errors.join("\n"),
    );
    assert.ok(
      errors.some((e) => /Content Security Policy/i.test(e)),
      "the blocked script was reported",
    );
  } finally {
    await browser.close();
    await server.shutdown();
  }
});

Deno.test("ui page: with --api-key it asks once in its own form and keeps the key for the tab", async () => {
  const { url, server } = serveApp("s3cret-key");
  const browser = await openBrowser();
  try {
    const { page, errors } = await newPage(browser, "phone");
    await page.goto(`${url}/ui`);
    await page.waitForSelector("#key-form", { state: "visible" });
    await screenshot(page, "ui-api-key");
    await page.fill("#key-input", "s3cret-key");
    await page.press("#key-input", "Enter");
    await page.waitForSelector("#key-form", { state: "hidden" });
    await polled(page);
    assert.equal(await page.evaluate('sessionStorage.getItem("groveKey")'), "s3cret-key");
    await page.reload();
    await polled(page);
    assert.equal(await page.isVisible("#key-form"), false, "asked only once");
    assert.deepEqual(realErrors(errors).filter((e) => !/401/.test(e)), []);
  } finally {
    await browser.close();
    await server.shutdown();
  }
});

Deno.test("ui client: no code path turns text into HTML", () => {
  const dir = new URL("../web/ui/client/", import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 8, "the client's files");
  for (const file of files) {
    const source = readFileSync(new URL(file, dir), "utf8");
    assert.doesNotMatch(
      source,
      /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(/,
      `${file} builds DOM from text`,
    );
  }
});
