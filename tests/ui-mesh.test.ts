/**
 * The mesh panel in real headless Chromium, against a real relay, serving nodes and a client
 * node as processes (tests/mesh-harness.ts): the picture shows each serving node with its model
 * and the path the client reaches it by, a split model's layers per node, and the charts a
 * point per answer. The chat here goes through the whole mesh too.
 */
import assert from "node:assert/strict";
import { modelConfigOf, modelShapeOf, openGguf, stageBytes } from "../inference/mod.ts";
import { MODEL_PATH } from "./helpers.ts";
import { newKey, type NodeProcess, startMesh, waitForAvailability } from "./mesh-harness.ts";
import { type Browser, newPage, openBrowser, type Page, screenshot } from "./support/browser.ts";
import { eventually } from "./support/poll.ts";

const MODEL = "stories260K";
const STORIES = `${MODEL_PATH.split(":")[0]}/stories260K.gguf`;

interface StatusView {
  relay?: { url: string; connected: boolean };
  admission?: { admitted: boolean; denied: boolean; reason: string | null };
  peers: { nodeName: string; path: string | null }[];
}

async function status(node: NodeProcess): Promise<StatusView> {
  const res = await fetch(`${node.url}/api/status`, { signal: AbortSignal.timeout(5000) });
  return await res.json();
}

/** Asks the client node through the page's chat and waits for the answer's timings. */
async function chat(page: Page, prompt: string): Promise<void> {
  const before = await page.locator(".msg.assistant.done").count();
  await page.fill("#chat-input", prompt);
  await page.click("#chat-send");
  await countOf(page, ".msg.assistant.done", (n) => n > before, 30_000);
}

/**
 * Waits until the page shows a number of `selector` that `ok` accepts. (Polled from here: the
 * page's CSP refuses the string evaluation page.waitForFunction would need in a file typed for
 * Deno rather than the DOM.)
 */
function countOf(page: Page, selector: string, ok: (n: number) => boolean, ms = 10_000) {
  return eventually(() => page.locator(selector).count(), {
    until: ok,
    timeoutMs: ms,
    intervalMs: 100,
    what: `the page's count of ${selector}`,
  });
}

const pageErrors = (errors: string[]) => errors.filter((e) => !/status of 501\b/.test(e));

Deno.test({
  name: "ui mesh: two serving nodes, their model and the direct path; charts after a chat",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  let browser: Browser | undefined;
  try {
    const [keyB, keyC] = [newKey(), newKey()];
    await mesh.addMember(keyB.pubkey);
    await mesh.addMember(keyC.pubkey);
    const [a, b, client] = await Promise.all([
      mesh.serve("node-a", mesh.owner),
      mesh.serve("node-b", keyB),
      mesh.consume(keyC),
    ]);
    void a, b;
    await waitForAvailability(client.url, (x) => x.serveTargets.length === 2, 30_000);

    const before = await status(client);
    assert.deepEqual(before.relay, { url: mesh.relayUrl, connected: true });
    assert.deepEqual(before.admission, { admitted: true, denied: false, reason: null });
    assert.deepEqual(before.peers.map((p) => p.path), [null, null], "no request yet: no path");

    browser = await openBrowser();
    const { page, errors } = await newPage(browser);
    await page.goto(`${client.url}/ui`);
    await page.waitForSelector("#mesh .mesh-node >> nth=1", { timeout: 10_000 });
    assert.equal(await page.locator('#mesh .mesh-node[data-path="none"]').count(), 2);
    assert.match(await page.textContent("#mesh-relay") ?? "", /connected$/);
    assert.equal(await page.getAttribute("#chart-tps", "data-points"), "0");

    // The router takes turns among equally loaded nodes: two answers reach both.
    await page.waitForSelector("#chat-send:not([disabled])", { timeout: 10_000 });
    await page.click("#chat details summary");
    await page.fill("#chat-max-tokens", "24");
    await chat(page, "Once upon a time");
    assert.match(
      await page.textContent(".msg.assistant:last-child .timings") ?? "",
      /^first token \d+ ms · [\d.]+ tokens\/s · 24 tokens$/,
    );
    await chat(page, "The cat sat");
    // The page's second chat continues its conversation, which prefix-affinity routing keeps on
    // the node that holds its prefix; a fresh prompt per round takes the other node in turn.
    let fresh = 0;
    await eventually(async () => {
      const paths = (await status(client)).peers.map((p) => p.path);
      if (paths.length !== 2 || !paths.every((p) => p === "direct")) {
        fresh++;
        const res = await fetch(`${client.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, prompt: "A dog", max_tokens: 4 }),
          signal: AbortSignal.timeout(20_000),
        });
        await res.body?.cancel();
      }
      return paths;
    }, {
      until: (paths) => paths.length === 2 && paths.every((p) => p === "direct"),
      timeoutMs: 30_000,
      what: "the client's status says both serving nodes are reached directly",
    });

    await countOf(page, '#mesh .mesh-node[data-path="direct"]', (n) => n === 2);
    const nodes = await page.$$eval("#mesh .mesh-node", (gs) =>
      gs.map((g) => ({
        model: g.getAttribute("data-model"),
        text: g.textContent,
      })).sort((x, y) => (x.text ?? "").localeCompare(y.text ?? "")));
    assert.equal(nodes.length, 2);
    assert.deepEqual(nodes.map((n) => n.model), [MODEL, MODEL]);
    assert.match(nodes[0].text ?? "", /^node-a · direct.*active · \d+ queued · whole model$/);
    assert.match(nodes[1].text ?? "", /^node-b · direct/);
    assert.match(await page.textContent("#mesh svg.mesh-picture") ?? "", /stories260K · 2 nodes/);
    const desc = await page.textContent("#mesh-picture-desc") ?? "";
    assert.match(desc, /node-a \(direct, /, "the picture's description says it in words");
    assert.match(desc, /node-b \(direct, /);
    // The charts: a point per answer (the page's two and the fresh ones), once the panel read
    // /api/timings again.
    await countOf(page, "#chart-tps circle.point", (n) => n >= 2 + fresh);
    assert.equal(await page.locator("#chart-ttft circle.point").count(), 2 + fresh);
    await screenshot(page, "mesh");
    const phone = await newPage(browser, "phone");
    await phone.page.goto(`${client.url}/ui`);
    await phone.page.waitForSelector('#mesh .mesh-node[data-path="direct"] >> nth=1', {
      timeout: 10_000,
    });
    await phone.page.waitForSelector("#chart-tps circle.point", { timeout: 10_000 });
    const width = await phone.page.$eval(
      "#mesh svg.mesh-picture",
      (s) => s.getBoundingClientRect().width,
    );
    assert.ok(width <= 390, `the picture fits a phone: ${width}px`);
    await screenshot(phone.page, "mesh");
    assert.deepEqual(pageErrors([...errors, ...phone.errors]), []);
  } finally {
    await browser?.close();
    await mesh.close();
  }
});

Deno.test({
  name: "ui mesh: a model split over two nodes is drawn as a bar of each node's layers",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  // As tests/split-e2e.test.ts: each budget below the whole model, two together enough.
  const file = await openGguf(STORIES);
  const shape = modelShapeOf(file, modelConfigOf(file), 256);
  const whole = stageBytes(shape, 0, shape.layerBytes.length);
  const budget = Math.ceil((whole + shape.scratchBytes) * 0.55);
  const layers = shape.layerBytes.length;

  const mesh = await startMesh();
  let browser: Browser | undefined;
  try {
    const [keyB, keyC] = [newKey(), newKey()];
    await mesh.addMember(keyB.pubkey);
    await mesh.addMember(keyC.pubkey);
    const flags = ["--ctx-size", "256", "--max-memory", String(budget)];
    const [client] = await Promise.all([
      mesh.consume(keyC),
      mesh.serve("stage-a", mesh.owner, flags),
      mesh.serve("stage-b", keyB, flags),
    ]);
    await waitForAvailability(
      client.url,
      (x) =>
        (x.serveTargets as { stages?: unknown[] | null }[]).filter((t) =>
          (t.stages?.length ?? 0) > 0
        )
          .length === 2,
      40_000,
    );
    browser = await openBrowser();
    for (const viewport of ["desktop", "phone"] as const) {
      const { page, errors } = await newPage(browser, viewport);
      await page.goto(`${client.url}/ui`);
      await page.waitForSelector("#mesh .stage-bar rect.seg >> nth=1", { timeout: 10_000 });
      const segs = await page.$$eval(
        "#mesh .stage-bar rect.seg",
        (rs) => rs.map((r) => r.getAttribute("data-layers")).sort(),
      );
      assert.equal(segs.length, 2);
      const [[s0, e0], [s1, e1]] = segs.map((s) => (s ?? "").split("-").map(Number));
      assert.equal(s0, 0);
      assert.equal(e0, s1, "the two shares meet");
      assert.equal(e1, layers, "together they hold every layer");
      assert.match(
        await page.textContent("#mesh svg.mesh-picture") ?? "",
        new RegExp(`stories260K · split: ${layers} layers`),
      );
      const facts = await page.$$eval(
        "#mesh .mesh-node .node-facts",
        (ts) => ts.map((t) => t.textContent ?? "").sort(),
      );
      assert.match(facts.join("\n"), /layers 0–\d+/);
      await screenshot(page, "mesh-split");
      assert.deepEqual(pageErrors(errors), []);
      await page.context().close();
    }
  } finally {
    await browser?.close();
    await mesh.close();
  }
});
