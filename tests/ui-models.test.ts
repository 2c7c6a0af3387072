/**
 * The models panel in real Chromium: pull a catalog model from a local HTTP server and watch the
 * bar, rate and time left move, see it installed with its sha256 checked, then delete it after
 * the inline confirm. The node API is the real one over a temporary GROVE_HOME; only the
 * catalog's URL points at this machine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CATALOG } from "../models/catalog.ts";
import { installedModelHooks } from "../models/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { openBrowser } from "./support/browser.ts";
import { fakeService } from "./support/fake-service.ts";
import { STORIES } from "./support/fixtures.ts";
import { openDashboard, realErrors, shoot, waitForText } from "./support/ui-pages.ts";

const CHUNK = 16 * 1024;
const PACE_MS = 25; // a slow link's pace, so the page sees several progress lines

/**
 * Serves `bytes` a chunk at a time and stops at the middle until `release()`: the page is caught
 * mid-download for as long as the test needs.
 */
function slowServer(bytes: Uint8Array) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= bytes.length) return controller.close();
        if (at >= bytes.length / 2) await released;
        else await new Promise((r) => setTimeout(r, PACE_MS));
        const next = Math.min(bytes.length, at + CHUNK);
        controller.enqueue(bytes.slice(at, next));
        at = next;
      },
    });
    return new Response(body, { headers: { "content-length": String(bytes.length) } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/stories260K.gguf`, release, server };
}

Deno.test("ui models: pull from a local server with progress, then delete after confirming", async () => {
  const bytes = await Deno.readFile(STORIES);
  const files = slowServer(bytes);
  const home = await Deno.makeTempDir({ prefix: "grove-ui-pull-" });
  const shelf = await Deno.makeTempDir({ prefix: "grove-ui-shelf-" });
  await Deno.copyFile(STORIES, join(shelf, "mine.gguf"));
  const stories = CATALOG.find((e) => e.id === "stories260K")!;
  const app = createNodeApp({
    service: fakeService(),
    node: installedModelHooks({
      groveHome: home,
      modelPath: [shelf],
      catalog: [{ ...stories, url: files.url }, {
        ...stories,
        id: "future-model",
        name: "Future model",
        url: "https://example.invalid/future.gguf",
        architecture: "no-such-arch",
        embedded: undefined,
      }],
    }),
  });
  const node = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const browser = await openBrowser();
  try {
    const { page, errors } = await openDashboard(browser, `http://127.0.0.1:${node.addr.port}`);
    // The GROVE_MODEL_PATH file is listed, read only: no delete button.
    await page.waitForSelector('#models-installed tr[data-model="mine.gguf"]', { timeout: 10_000 });
    assert.equal(
      await page.locator('#models-installed tr[data-model="mine.gguf"] .delete-model').count(),
      0,
    );

    await page.fill("#pull-model", "stories260K");
    await page.click("#pull-button");
    const text = await waitForText(
      page,
      "#pull-progress-text",
      /^Downloading stories260K: [\d.]+ (KiB|MiB) of 1\.1 MiB \((\d+)%\) · [\d.]+ (B|KiB|MiB)\/s · \d+ (s|min)/,
    );
    const percent = Number(/\((\d+)%\)/.exec(text)![1]);
    assert.ok(percent > 0 && percent < 100, text);
    assert.ok(await page.isVisible("#pull-progress-bar"));
    const value = Number(await page.getAttribute("#pull-progress-bar", "value"));
    assert.ok(value > 0 && value < bytes.length, `the bar is part full: ${value}`);
    assert.equal(await page.isDisabled("#pull-button"), true, "one pull at a time");
    await shoot(page, "pull-progress");

    files.release();
    await waitForText(page, "#pull-result", /^Installed stories260K\.$/);
    assert.equal(await page.isVisible("#pull-progress"), false, "the bar goes once done");
    const row = '#models-installed tr[data-model="stories260K"]';
    await waitForText(page, row, /1\.1 MiB.*llama · F32.*sha256 verified/);
    // The catalog (the real route over this test's one-entry catalog) says it fits and is here.
    await waitForText(
      page,
      '#models-catalog li[data-model="stories260K"]',
      /1\.1 MiB.*fits this machine.*installed/,
    );
    await waitForText(page, "#models-catalog", /^This machine: [\d.]+ GiB of memory\./);
    // An architecture the engines do not run is listed for what it needs, with no pull.
    const future = '#models-catalog li[data-model="future-model"]';
    await waitForText(page, future, /Grove can't run no-such-arch yet/);
    assert.equal(await page.locator(`${future} .catalog-pull`).count(), 0);
    await shoot(page, "pull-done");

    // Delete asks inline first; Cancel keeps the model.
    await page.click(`${row} .delete-model`);
    await waitForText(page, `${row} .confirm`, /Delete stories260K\?/);
    await page.click(`${row} .confirm-no`);
    assert.equal(await page.locator(`${row} .delete-model`).count(), 1);
    await page.click(`${row} .delete-model`);
    await shoot(page, "model-delete-confirm");
    await page.click(`${row} .confirm-yes`);
    // What stays is the copy shipped with Grove: read only, no delete button.
    await waitForText(page, row, /shipped with Grove \(read only\)/);
    assert.equal(await page.locator(`${row} .delete-model`).count(), 0);
    await page.waitForSelector('#models-installed tr[data-model="mine.gguf"]');
    await Deno.stat(join(home, "models", "stories260K.gguf")).then(
      () => assert.fail("the file is still there"),
      (err) => assert.ok(err instanceof Deno.errors.NotFound),
    );
    assert.deepEqual(realErrors(errors), []);
  } finally {
    files.release();
    await browser.close();
    await node.shutdown();
    await files.server.shutdown();
    await Deno.remove(home, { recursive: true });
    await Deno.remove(shelf, { recursive: true });
  }
});
