/**
 * A stranger's node in real Chromium: a relay with a member list, and a client node whose key is
 * not on it (processes as users run them). The page says the relay denied it, in the node's
 * exact words, and the controls that need the mesh are disabled rather than pretending to work.
 */
import assert from "node:assert/strict";
import { MESH_DENIED_MESSAGE } from "../mesh/mod.ts";
import { newKey, startMesh } from "./mesh-harness.ts";
import { openBrowser } from "./support/browser.ts";
import { openDashboard, realErrors, shoot, waitForText } from "./support/ui-pages.ts";

Deno.test({
  name: "ui denied: a stranger's node shows the relay's denial and disables sharing and pulls",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  const browser = await openBrowser();
  try {
    const stranger = await mesh.consume(newKey(), false);
    const { page, errors } = await openDashboard(browser, stranger.url);
    const banner = await waitForText(page, "#denied", /denied/, 30_000);
    assert.equal(banner, MESH_DENIED_MESSAGE);
    assert.equal(banner, "Relay mesh denied this node — check your relay membership.");
    assert.ok(await page.isVisible("#denied"));
    await waitForText(page, "#status-membership", /^denied/);
    assert.equal(await page.isDisabled("#share-toggle"), true, "no sharing without admission");
    assert.equal(await page.isDisabled("#share-model"), true);
    assert.equal(await page.isDisabled("#pull-button"), true, "no pulls either");
    await waitForText(page, "#share-state", /needs the relay to admit this node/);
    await shoot(page, "denied");
    // Only the denial itself may be an error the browser logs (the /v1 or preset routes' 403).
    assert.deepEqual(
      realErrors(errors).filter((e) => !/status of 403/.test(e)),
      [],
    );
  } finally {
    await browser.close();
    await mesh.close();
  }
});
