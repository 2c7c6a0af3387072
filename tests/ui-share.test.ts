/**
 * The share-compute switch in real Chromium, keyboard first: Tab to the switch, Space, and the
 * badge goes starting (with the download's bar, rate and time left) → running; a click goes back
 * to client mode; a start that fails shows the node's reason. The node's runtime here is a
 * scripted hook behind the real node API (`createNodeApp({node: {start, status …}})`), so each
 * state holds until the test moves it on.
 */
import assert from "node:assert/strict";
import { createNodeApp } from "../web/mod.ts";
import type { NodeStatus } from "../web/node-api.ts";
import { openBrowser } from "./support/browser.ts";
import { fakeService } from "./support/fake-service.ts";
import { startMesh } from "./mesh-harness.ts";
import { openDashboard, realErrors, shoot, waitForText } from "./support/ui-pages.ts";

const MIB = 1024 * 1024;

function scriptedRuntime() {
  const running = (mode: string, modelId: string | null) => ({
    state: "running",
    mode,
    modelId,
    modelName: modelId,
    progress: null,
    health: { status: "ok", reason: null },
  });
  let now: Record<string, unknown> = running("client", null);
  let finishLoading = () => {};
  const hooks = {
    status: () => now as Partial<NodeStatus>,
    installedModels: () => Promise.resolve([{ id: "stories260K", size: 1185376 }]),
    start(options: { mode: string; modelId?: string }) {
      if (options.mode === "client") {
        now = running("client", null);
        return { state: "running" as const };
      }
      if (options.modelId === "missing-model") {
        now = {
          ...running("serve", null),
          state: "failed",
          health: { status: "failed", reason: 'no model "missing-model" in the catalog' },
        };
        return { state: "starting" as const };
      }
      now = {
        ...running("serve", options.modelId ?? null),
        state: "starting",
        progress: {
          phase: "downloading",
          bytes: 0.375 * MIB,
          total: 1.125 * MIB,
          rate: 131072,
          eta: 6,
        },
        health: { status: "degraded", reason: "loading the model" },
      };
      finishLoading = () => now = running("serve", options.modelId ?? null);
      return { state: "starting" as const };
    },
    stop() {
      now = { ...running("client", null), state: "off" };
      return { state: "off" as const };
    },
  };
  return { hooks, loaded: () => finishLoading() };
}

Deno.test("ui share: Tab and Space start sharing, the badge goes starting → running, a click stops it", async () => {
  const runtime = scriptedRuntime();
  const app = createNodeApp({ service: fakeService(), node: runtime.hooks, mode: "client" });
  const node = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const browser = await openBrowser();
  try {
    const { page, errors } = await openDashboard(browser, `http://127.0.0.1:${node.addr.port}`);
    const sent: unknown[] = [];
    page.on("request", (r) => {
      if (r.url().endsWith("/api/node/start")) sent.push(r.postDataJSON());
    });
    await waitForText(page, "#state-badge", /^running$/);
    await waitForText(page, "#share-chips", /stories260K/);
    assert.equal(await page.getAttribute("#share-toggle", "aria-checked"), "false");
    assert.equal(await page.inputValue("#share-model"), "stories260K", "the installed model");
    await waitForText(page, "#share-state", /^Using the mesh as a client/);
    await shoot(page, "share-off");

    // Keyboard only: Tab until the switch has focus, then Space.
    for (let i = 0; i < 30; i++) {
      if (await page.evaluate("document.activeElement?.id") === "share-toggle") break;
      await page.keyboard.press("Tab");
    }
    assert.equal(await page.evaluate("document.activeElement?.id"), "share-toggle");
    await page.keyboard.press("Space");
    await waitForText(page, "#state-badge", /^starting$/);
    assert.deepEqual(sent, [{ mode: "serve", modelId: "stories260K" }]);
    await waitForText(
      page,
      "#share-progress-text",
      /^Downloading the model: 384 KiB of 1\.1 MiB \(33%\) · 128 KiB\/s · 6 s left$/,
    );
    await waitForText(page, "#health-badge", /^degraded: loading the model$/);
    assert.equal(await page.getAttribute("#share-toggle", "aria-checked"), "true");
    assert.equal(await page.textContent("#share-toggle"), "Starting…");
    assert.equal(await page.evaluate("document.activeElement?.id"), "share-toggle", "focus kept");
    await shoot(page, "share-starting");

    runtime.loaded();
    await waitForText(page, "#state-badge", /^running$/);
    await waitForText(page, "#share-state", /^Serving stories260K to the relay's members\.$/);
    assert.equal(await page.getAttribute("#share-toggle", "aria-checked"), "true");
    assert.equal(await page.isVisible("#share-progress"), false);
    await waitForText(page, "#health-badge", /^ok$/);
    await shoot(page, "share-running");

    await page.click("#share-toggle");
    await waitForText(page, "#share-state", /^Using the mesh as a client/);
    assert.deepEqual(sent[1], { mode: "client" });
    assert.equal(await page.getAttribute("#share-toggle", "aria-checked"), "false");

    // A failed start: the node's reason on the page, in the badge and under the switch.
    await page.fill("#share-model", "missing-model");
    await page.click("#share-advanced summary");
    await page.fill("#share-memory", "2GiB");
    await page.check("#share-gpu");
    await page.click("#share-toggle");
    await waitForText(page, "#state-badge", /^failed$/);
    assert.deepEqual(sent[2], {
      mode: "serve",
      modelId: "missing-model",
      maxMemory: "2GiB",
      gpu: true,
    });
    await waitForText(
      page,
      "#share-error",
      /^Failed to start: no model "missing-model" in the catalog$/,
    );
    await waitForText(page, "#health-badge", /^failed: no model "missing-model" in the catalog$/);
    await shoot(page, "share-failed");
    assert.deepEqual(realErrors(errors), []);
  } finally {
    await browser.close();
    await node.shutdown();
  }
});

Deno.test({
  name: "ui share: a real client node starts serving from the switch and goes back to client",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  const browser = await openBrowser();
  try {
    const client = await mesh.consume();
    const { page, errors } = await openDashboard(browser, client.url);
    // Every text the state badge shows, in order, however briefly.
    await page.evaluate(`(() => {
      const badge = document.getElementById("state-badge");
      window.__states = [badge.textContent];
      new MutationObserver(() => window.__states.push(badge.textContent))
        .observe(badge, { childList: true, characterData: true, subtree: true });
    })()`);
    const states = async () => (await page.evaluate("window.__states")) as string[];
    await waitForText(page, "#state-badge", /^running$/);
    await waitForText(page, "#status-mode", /^client$/);
    await waitForText(page, "#status-relay", /^connected/);
    await waitForText(page, "#status-membership", /^admitted/);
    await page.fill("#share-model", "stories260K");
    await waitForText(page, "#share-ref", /^catalog /);
    await shoot(page, "share-off-real");

    await page.focus("#share-toggle");
    await page.keyboard.press("Space");
    await waitForText(page, "#status-mode", /^serve$/, 60_000);
    await waitForText(page, "#state-badge", /^running$/, 60_000);
    await waitForText(page, "#share-state", /^Serving stories260K/);
    assert.equal(await page.getAttribute("#share-toggle", "aria-checked"), "true");
    const on = await states();
    assert.ok(on.indexOf("starting") > 0, `starting was shown: ${on.join(" → ")}`);
    assert.ok(on.lastIndexOf("running") > on.indexOf("starting"), on.join(" → "));
    await shoot(page, "share-running-real");

    await page.click("#share-toggle");
    await waitForText(page, "#status-mode", /^client$/, 60_000);
    await waitForText(page, "#state-badge", /^running$/, 60_000);
    assert.equal(await page.getAttribute("#share-toggle", "aria-checked"), "false");
    await waitForText(page, "#share-state", /^Using the mesh as a client/);
    const all = await states();
    assert.ok(
      all.lastIndexOf("starting") > on.length - 1,
      `client start shown: ${all.join(" → ")}`,
    );
    assert.deepEqual(realErrors(errors), []);
  } finally {
    await browser.close();
    await mesh.close();
  }
});
