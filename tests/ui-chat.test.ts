/// <reference lib="dom" />
/**
 * The chat playground in real headless Chromium: a node on stories260K streams an answer into
 * the page with its timings; Stop ends a stream mid-way (and the model hears it); model output
 * renders as Markdown with raw HTML and unsafe links left as text. (Through a real relay,
 * serving and client node: tests/ui-mesh.test.ts.)
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService, type InferenceService } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { STORIES } from "./helpers.ts";
import { fakeService, tokens } from "./support/fake-service.ts";
import { type Browser, newPage, openBrowser, type Page, screenshot } from "./support/browser.ts";

async function withNode(
  service: InferenceService,
  fn: (url: string, browser: Browser) => Promise<void>,
): Promise<void> {
  const app = createNodeApp({ service });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  let browser: Browser | undefined;
  try {
    browser = await openBrowser();
    await fn(`http://127.0.0.1:${server.addr.port}`, browser);
  } finally {
    await browser?.close();
    await server.shutdown();
  }
}

/** Opens /ui and waits until the chat offers `model`. */
async function openChat(page: Page, url: string, model: string): Promise<void> {
  await page.goto(`${url}/ui`);
  await page.waitForSelector(`#chat-model option[value="${model}"]`, {
    state: "attached",
    timeout: 10_000,
  });
  await page.waitForSelector("#chat-send:not([disabled])", { timeout: 10_000 });
}

const lastAnswer = ".msg.assistant:last-child";

/**
 * Page errors and CSP reports, but not the 501s of the other panels' routes, which a bare node
 * app (no model store, no runtime hooks) answers so.
 */
const realErrors = (errors: string[]) => errors.filter((e) => !/status of 501\b/.test(e));

Deno.test({
  name: "ui chat: a prompt streams an answer from stories260K, then its timings",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 256 });
  const service = createLocalService({ engine, id: "stories260K" });
  try {
    await withNode(service, async (url, browser) => {
      for (const viewport of ["desktop", "phone"] as const) {
        const { page, errors } = await newPage(browser, viewport);
        await openChat(page, url, "stories260K");
        await page.click("#chat details summary");
        await page.fill("#chat-max-tokens", "60");
        await page.fill("#chat-temperature", "0");
        await page.fill("#chat-input", "Once upon a time");
        await page.press("#chat-input", "Enter"); // Enter sends
        await page.waitForSelector(`${lastAnswer}.done`, { timeout: 20_000 });
        const text = await page.textContent(`${lastAnswer} .md`);
        assert.ok((text ?? "").trim().length > 10, `streamed text: ${text}`);
        const timings = await page.textContent(`${lastAnswer} .timings`);
        assert.match(
          timings ?? "",
          /^first token \d+ ms · [\d.]+ tokens\/s · 60 tokens$/,
          "the answer's timings",
        );
        assert.equal(await page.textContent(".msg.user .md"), "Once upon a time");
        assert.equal(await page.inputValue("#chat-input"), "", "the box is cleared");
        await screenshot(page, "chat-streaming");
        assert.deepEqual(realErrors(errors), []);
        await page.context().close();
      }
    });
  } finally {
    service.close();
  }
});

Deno.test({
  name: "ui chat: Shift+Enter is a new line; Stop ends a stream mid-way and the model stops too",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const words = Array.from({ length: 200 }, (_, i) => `word${i} `);
  const service = fakeService({ reply: () => tokens(...words), tokenDelayMs: 40 });
  await withNode(service, async (url, browser) => {
    const { page, errors } = await newPage(browser);
    await openChat(page, url, "tiny");
    await page.fill("#chat-input", "first line");
    await page.press("#chat-input", "Shift+Enter");
    await page.type("#chat-input", "second line");
    assert.equal(await page.inputValue("#chat-input"), "first line\nsecond line");
    assert.equal(await page.locator(".msg").count(), 0, "Shift+Enter sent nothing");
    await page.click("#chat-send");
    await page.waitForFunction(
      () => (document.querySelector(".msg.assistant .md")?.textContent ?? "").includes("word3"),
      undefined,
      { timeout: 10_000 },
    );
    assert.equal(await page.isDisabled("#chat-send"), true, "one answer at a time");
    await page.click("#chat-stop");
    await page.waitForSelector(".msg.assistant.stopped", { timeout: 5_000 });
    assert.match(await page.textContent(".msg.assistant .timings") ?? "", /^stopped/);
    const shown = await page.textContent(".msg.assistant .md") ?? "";
    assert.ok(!shown.includes("word199"), "the stream ended before the answer did");
    assert.equal(await page.isDisabled("#chat-stop"), true);
    assert.equal(await page.isDisabled("#chat-send"), false, "ready for the next question");
    const call = service.calls[0];
    for (let i = 0; i < 100 && !call.aborted; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(call.aborted, true, "the abort reached the model");
    assert.ok(call.sent < 200, `${call.sent} tokens were made`);
    assert.equal(call.req.messages?.at(-1)?.content, "first line\nsecond line");
    assert.deepEqual(realErrors(errors), []);
  });
});

const MARKDOWN_REPLY = [
  "# Plan\n\n",
  "Some **bold** and *em* text with `a*b*c` code.\n\n",
  "- [safe](https://example.com/doc)\n",
  "- [x](javascript:alert(1))\n\n",
  '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script>\n\n',
  "```js\nconst y = 2 ** 3;\n```\n",
];

Deno.test({
  name: "ui chat: model output is Markdown; raw HTML and a javascript: link stay text",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const service = fakeService({ reply: () => tokens(...MARKDOWN_REPLY) });
  await withNode(service, async (url, browser) => {
    for (const viewport of ["desktop", "phone"] as const) {
      const { page, errors } = await newPage(browser, viewport);
      await openChat(page, url, "tiny");
      await page.fill("#chat-input", "Write a plan");
      await page.click("#chat-send");
      await page.waitForSelector(`${lastAnswer}.done`, { timeout: 10_000 });
      const md = `${lastAnswer} .md`;
      assert.equal(await page.textContent(`${md} h3`), "Plan");
      assert.equal(await page.textContent(`${md} strong`), "bold");
      assert.equal(await page.textContent(`${md} em`), "em");
      assert.equal(await page.textContent(`${md} p code`), "a*b*c");
      assert.equal(await page.textContent(`${md} pre code`), "const y = 2 ** 3;");
      const links = await page.$$eval(
        `${md} a`,
        (as) => as.map((a) => [a.getAttribute("href"), a.getAttribute("rel"), a.textContent]),
      );
      assert.deepEqual(links, [["https://example.com/doc", "noopener noreferrer", "safe"]]);
      assert.equal(await page.getAttribute(`${md} a`, "target"), "_blank");
      const items = await page.$$eval(`${md} li`, (li) => li.map((l) => l.textContent));
      assert.deepEqual(items, ["safe", "[x](javascript:alert(1))"]);
      assert.equal(await page.locator("img").count(), 0, "no <img> in the page");
      assert.equal(await page.locator(`${md} script`).count(), 0);
      assert.match(
        await page.textContent(md) ?? "",
        /<img src=x onerror="window\.pwned=1"> <script>window\.pwned=2<\/script>/,
      );
      assert.equal(await page.evaluate(() => "pwned" in window), false);
      await screenshot(page, "chat-markdown");
      assert.deepEqual(realErrors(errors), []);
      await page.context().close();
    }
  });
});

Deno.test({
  name: "ui chat: an error is said in words; with no model the chat is off and says why",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { ServiceError } = await import("../mesh/mod.ts");
  const service = fakeService({
    reply: () => new ServiceError("unavailable", "every serving node is busy"),
  });
  await withNode(service, async (url, browser) => {
    const { page } = await newPage(browser);
    await openChat(page, url, "tiny");
    await page.fill("#chat-input", "hello");
    await page.click("#chat-send");
    await page.waitForSelector(".msg.assistant.failed", { timeout: 10_000 });
    assert.match(
      await page.textContent(".msg.assistant .error") ?? "",
      /^Error: .*every serving node is busy/,
    );
  });
  await withNode(fakeService({ models: [] }), async (url, browser) => {
    const { page } = await newPage(browser);
    await page.goto(`${url}/ui`);
    await page.waitForSelector("#chat-note:not([hidden])", { timeout: 10_000 });
    assert.match(await page.textContent("#chat-note") ?? "", /^Chat needs a model: /);
    assert.equal(await page.isDisabled("#chat-send"), true);
    assert.equal(await page.isDisabled("#chat-input"), true);
  });
});
