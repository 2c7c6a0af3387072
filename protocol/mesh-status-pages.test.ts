import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { makeMeshStatusEvent, parseMeshStatus } from "./mesh-status-event.ts";
import {
  makeMeshStatusPageEvent,
  meshStatusFilter,
  type MeshStatusPage,
  meshStatusPageOf,
  parseMeshStatusPage,
} from "./mesh-status-pages.ts";

const SK = generateSecretKey();
const PK = getPublicKey(SK);
const page: MeshStatusPage = {
  v: 1,
  type: "mesh-status-page",
  meshId: "m1",
  page: 2,
  serveTargets: [],
};

Deno.test("mesh status pages: round trip, d tag and page number must agree", () => {
  const ev = makeMeshStatusPageEvent(SK, page, 100);
  assert.deepEqual(ev.tags, [["-"], ["d", "relay-mesh:2"], ["k", "mesh-status-page"]]);
  assert.equal(meshStatusPageOf(ev), 2);
  assert.deepEqual(parseMeshStatusPage(ev, { relayPubkey: PK }), page);
  const moved = finalizeEvent({
    kind: 30621,
    created_at: 100,
    tags: [["d", "relay-mesh:3"]],
    content: JSON.stringify(page),
  }, SK);
  assert.throws(() => parseMeshStatusPage(moved), /page must be 3, as its d tag says/);
  const far = { ...ev, tags: [["d", "relay-mesh:33"]] };
  assert.equal(meshStatusPageOf(far), undefined, "past the most pages a status has");
  assert.throws(() => parseMeshStatusPage(ev, { relayPubkey: "b".repeat(64) }), /not signed/);
});

Deno.test("mesh status pages: the filter asks for the index and all 32 pages", () => {
  const f = meshStatusFilter(PK);
  assert.deepEqual(f.kinds, [30621]);
  assert.deepEqual(f.authors, [PK]);
  assert.equal(f["#d"].length, 33);
  assert.equal(f["#d"][0], "relay-mesh");
  assert.equal(f["#d"][32], "relay-mesh:32");
});

Deno.test("mesh status index: page references must be in order and ids hex", () => {
  const base = {
    v: 1 as const,
    type: "mesh-status" as const,
    updatedAt: 1,
    meshId: "m1",
    serveTargets: [],
    models: [{ id: "m", name: "m", targets: 3, load: { active: 1, queued: 2 } }],
    peerCount: 3,
    targetCount: 3,
  };
  const good = { ...base, pages: [{ d: "relay-mesh:1", id: "a".repeat(64) }] };
  assert.deepEqual(parseMeshStatus(makeMeshStatusEvent(SK, good)), good);
  const skipped = { ...base, pages: [{ d: "relay-mesh:2", id: "a".repeat(64) }] };
  assert.throws(
    () => parseMeshStatus(makeMeshStatusEvent(SK, skipped)),
    /pages\[0\]\.d must be "relay-mesh:1"/,
  );
  const badId = { ...base, pages: [{ d: "relay-mesh:1", id: "xyz" }] };
  assert.throws(() => parseMeshStatus(makeMeshStatusEvent(SK, badId)), /pages\[0\]\.id/);
});
