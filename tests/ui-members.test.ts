/**
 * The members panel in real Chromium against real processes (a relay, the owner's client node, a
 * member's client node): on the owner's node the page lists the relay's members, adds one by
 * npub (signed by the node over NIP-86), shows the refusal of a bad npub, and removes a member
 * after the inline confirm; on a plain member's node the panel stays hidden.
 */
import assert from "node:assert/strict";
import { npubEncode } from "nostr-tools/nip19";
import { newKey, startMesh } from "./mesh-harness.ts";
import { openBrowser } from "./support/browser.ts";
import { openDashboard, realErrors, shoot, waitForText } from "./support/ui-pages.ts";
Deno.test({
  name: "ui members: the owner adds and removes a member; a member's node shows no panel",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  const browser = await openBrowser();
  try {
    const bob = newKey();
    const bobNpub = npubEncode(bob.pubkey);
    const owner = await mesh.consume();
    const { page, errors } = await openDashboard(browser, owner.url);
    await page.waitForSelector("#members", { state: "visible", timeout: 15_000 });
    const ownerRow = `#members-list tr[data-npub="${npubEncode(mesh.owner.pubkey)}"]`;
    await waitForText(page, ownerRow, /owner/);
    assert.equal(
      await page.locator(`${ownerRow} .remove-member`).count(),
      0,
      "no removing the owner",
    );

    await page.fill("#member-npub", bobNpub);
    await page.selectOption("#member-role", "member");
    await page.click("#member-add");
    const bobRow = `#members-list tr[data-npub="${bobNpub}"]`;
    await waitForText(page, bobRow, /member/);
    assert.equal(await page.inputValue("#member-npub"), "", "the field empties once added");
    await shoot(page, "members");

    // What the relay refuses is shown in words, and the list stays as it was.
    await page.fill("#member-npub", "npub1notakey");
    await page.click("#member-add");
    await waitForText(page, "#members-error", /not a valid npub/);
    assert.ok(await page.isVisible("#members-error"));
    await shoot(page, "members-error");

    // A plain member's node cannot manage the list: no panel at all.
    const bobNode = await mesh.consume(bob);
    const bobPage = await openDashboard(browser, bobNode.url);
    await bobPage.page.waitForSelector('#members[data-state="not-managing"]', {
      state: "attached",
      timeout: 10_000,
    });
    assert.equal(await bobPage.page.isVisible("#members"), false);

    await page.click(`${bobRow} .remove-member`);
    await waitForText(page, `${bobRow} .confirm`, /Remove\?/);
    await shoot(page, "members-remove-confirm");
    await page.click(`${bobRow} .confirm-yes`);
    await page.waitForSelector(bobRow, { state: "detached", timeout: 15_000 });
    assert.ok(await page.isVisible(ownerRow));
    assert.deepEqual(realErrors(errors).filter((e) => !/status of 400/.test(e)), []);
  } finally {
    await browser.close();
    await mesh.close();
  }
});
