import assert from "node:assert/strict";
import { getPublicKey } from "nostr-tools/pure";
import {
  isEntryTarget,
  makeMeshStatusEvent,
  type MeshStatus,
  parseMeshStatus,
  parseServeReport,
} from "./mesh-status-event.ts";

const RELAY_SK = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const RELAY_PK = getPublicKey(RELAY_SK);

const REPORT = {
  modelId: "stories260K",
  modelName: "Stories 260K",
  peerId: "16Uiu2HAmExample",
  nodeName: "alice-laptop",
  addrs: ["/ip4/192.168.1.5/tcp/4001"],
  stages: [[0, 5]],
  capacity: { memoryBytes: 8_000_000_000 },
  load: { active: 1, queued: 0 },
  state: "serving",
};

function reportWith(patch: Record<string, unknown>): string {
  return JSON.stringify({ ...REPORT, ...patch });
}

Deno.test("serve report: a complete report parses to the same fields", () => {
  assert.deepEqual(parseServeReport(JSON.stringify(REPORT)), REPORT);
  assert.equal(parseServeReport(reportWith({ stages: null })).stages, null);
});

Deno.test("serve report: each bad field is named in the error", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ modelId: 7 }, /serve report: modelId must be a string/],
    [{ modelId: "" }, /modelId must not be empty/],
    [{ peerId: undefined }, /peerId must be a string/],
    [{ addrs: "/ip4/1.2.3.4" }, /addrs must be an array/],
    [{ addrs: ["/ip4/1.2.3.4/tcp/1", 5] }, /addrs\[1\] must be a string/],
    [{ addrs: ["1.2.3.4:4001"] }, /addrs\[0\] is not a multiaddr/],
    [{ addrs: Array(33).fill("/ip4/1.2.3.4/tcp/1") }, /addrs has more than 32/],
    [{ stages: [[0]] }, /stages\[0\] must be \[LAYER_START, LAYER_END\]/],
    [{ stages: [[3, 1]] }, /stages\[0\] ends before it starts/],
    [{ stages: [[0, -1]] }, /stages\[0\]\[1\] must be a non-negative integer/],
    [{ capacity: {} }, /capacity.memoryBytes must be a non-negative integer/],
    [{ capacity: null }, /capacity must be an object/],
    [{ load: { active: 1.5, queued: 0 } }, /load.active must be a non-negative integer/],
    [{ load: { active: 0 } }, /load.queued/],
    [{ state: "" }, /state must not be empty/],
    [{ nodeName: "x".repeat(257) }, /nodeName is longer than 256/],
  ];
  for (const [patch, pattern] of cases) {
    assert.throws(() => parseServeReport(reportWith(patch)), pattern, JSON.stringify(patch));
  }
  assert.throws(() => parseServeReport("{not json"), /serve report: content is not JSON/);
  assert.throws(() => parseServeReport("[1]"), /serve report: content must be an object/);
});

const SHA = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";
const PLAN = "ab".repeat(32);

Deno.test("serve report: sha256, features and planId parse and round-trip; old reports lack them", () => {
  const split = { ...REPORT, sha256: SHA, features: ["tools", "logit_bias", "n"], planId: PLAN };
  assert.deepEqual(parseServeReport(JSON.stringify(split)), split);
  assert.equal(parseServeReport(reportWith({ planId: null, stages: [] })).planId, null);
  assert.deepEqual(parseServeReport(reportWith({ stages: [] })).stages, []);
  assert.deepEqual(parseServeReport(reportWith({ features: [] })).features, []);
  const old = parseServeReport(JSON.stringify(REPORT));
  for (const field of ["sha256", "features", "planId"]) assert.equal(field in old, false, field);
});

Deno.test("serve report: a bad sha256, feature, planId or empty stage is named in the error", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ sha256: SHA.toUpperCase() }, /serve report: sha256 must be 64 lowercase hex characters/],
    [{ sha256: SHA.slice(1) }, /sha256 must be 64 lowercase hex/],
    [{ sha256: null }, /sha256 must be 64 lowercase hex/],
    [{ features: "tools" }, /features must be an array of feature names/],
    [{ features: ["tools", "Tools"] }, /features\[1\] must be 1-32 characters of a-z 0-9 _ -/],
    [{ features: [""] }, /features\[0\] must be 1-32 characters/],
    [{ features: ["x".repeat(33)] }, /features\[0\] must be 1-32 characters/],
    [{ features: [7] }, /features\[0\] must be 1-32 characters/],
    [{ features: Array(33).fill("n") }, /features has more than 32 entries/],
    [{ planId: "plan-1" }, /planId must be null or 64 lowercase hex characters/],
    [{ planId: 0 }, /planId must be null or 64 lowercase hex/],
    [{ stages: [[2, 2]] }, /stages\[0\] holds no layer: \[start, end\) needs start < end/],
    [{ stages: [[0, 2], [2, 2]] }, /stages\[1\] holds no layer/],
  ];
  for (const [patch, pattern] of cases) {
    assert.throws(() => parseServeReport(reportWith(patch)), pattern, JSON.stringify(patch));
  }
});

Deno.test("entry targets: the whole model or stage 0; never a waiting candidate or later stage", () => {
  assert.equal(isEntryTarget({ stages: null }), true);
  assert.equal(isEntryTarget({ stages: [[0, 2]] }), true);
  assert.equal(isEntryTarget({ stages: [] }), false);
  assert.equal(isEntryTarget({ stages: [[2, 4]] }), false);
});

Deno.test("serve report: a local path as model id or name is refused", () => {
  for (const modelId of ["/home/alice/models/x.gguf", "~/x.gguf", "./x.gguf", "C:\\m\\x.gguf"]) {
    assert.throws(
      () => parseServeReport(reportWith({ modelId })),
      /modelId looks like a local path/,
    );
  }
  assert.throws(
    () => parseServeReport(reportWith({ modelName: "/srv/models/x.gguf" })),
    /modelName looks like a local path/,
  );
  const hf = "hf://owner/repo/model.gguf";
  assert.equal(parseServeReport(reportWith({ modelId: hf })).modelId, hf);
});

const STATUS: MeshStatus = {
  v: 1,
  type: "mesh-status",
  updatedAt: 1_700_000_000,
  meshId: "mesh-1",
  serveTargets: [{ ...parseServeReport(JSON.stringify(REPORT)), pubkey: "b".repeat(64) }]
    .map(({ state: _state, ...t }) => t),
  models: [{ id: "stories260K", name: "Stories 260K" }],
  peerCount: 3,
};

Deno.test("mesh status: the event is relay-signed, protected, addressable and round-trips", () => {
  const ev = makeMeshStatusEvent(RELAY_SK, STATUS);
  assert.equal(ev.kind, 30621);
  assert.equal(ev.pubkey, RELAY_PK);
  assert.equal(ev.created_at, STATUS.updatedAt);
  assert.deepEqual(ev.tags, [["-"], ["d", "relay-mesh"], ["k", "mesh-status"]]);
  assert.deepEqual(parseMeshStatus(ev), STATUS);
  assert.deepEqual(parseMeshStatus(ev, { relayPubkey: RELAY_PK }), STATUS);
  assert.equal("state" in parseMeshStatus(ev).serveTargets[0], false);
});

Deno.test("mesh status: another signer, tampering or bad content is rejected", () => {
  const ev = makeMeshStatusEvent(RELAY_SK, STATUS);
  assert.throws(
    () => parseMeshStatus(ev, { relayPubkey: "c".repeat(64) }),
    /mesh status: is not signed by the relay/,
  );
  const tampered = { ...ev, content: JSON.stringify({ ...STATUS, peerCount: 99 }) };
  assert.throws(
    () => parseMeshStatus(tampered, { relayPubkey: RELAY_PK }),
    /invalid id or signature/,
  );
  const content = (patch: Record<string, unknown>) => ({
    ...ev,
    content: JSON.stringify({ ...STATUS, ...patch }),
  });
  assert.throws(() => parseMeshStatus(content({ v: 2 })), /v must be 1/);
  assert.throws(() => parseMeshStatus(content({ peerCount: -1 })), /peerCount must be/);
  assert.throws(
    () => parseMeshStatus(content({ serveTargets: [{ ...STATUS.serveTargets[0], pubkey: "x" }] })),
    /serveTargets\[0\]\.pubkey must be 64 hex/,
  );
  assert.throws(
    () => parseMeshStatus(content({ serveTargets: [{ ...STATUS.serveTargets[0], addrs: [1] }] })),
    /serveTargets\[0\]\.addrs\[0\] must be a string/,
  );
  assert.throws(
    () => parseMeshStatus(content({ serveTargets: [{ ...STATUS.serveTargets[0], sha256: "x" }] })),
    /serveTargets\[0\]\.sha256 must be 64 lowercase hex/,
  );
  assert.throws(
    () =>
      parseMeshStatus(content({ serveTargets: [{ ...STATUS.serveTargets[0], features: ["A"] }] })),
    /serveTargets\[0\]\.features\[0\] must be/,
  );
  assert.throws(() => parseMeshStatus({ ...ev, kind: 30622 }), /kind is 30622/);
  assert.throws(() => parseMeshStatus({ ...ev, tags: [["d", "x"]] }), /no \["d","relay-mesh"\]/);
});

Deno.test("mesh status: split targets keep sha256, features, planId and stages through the event", () => {
  const base = STATUS.serveTargets[0];
  const split: MeshStatus = {
    ...STATUS,
    serveTargets: [
      { ...base, stages: [[0, 3]], sha256: SHA, features: ["tools"], planId: PLAN },
      { ...base, peerId: "16Uiu2HAmOther", stages: [[3, 5]], sha256: SHA, planId: PLAN },
      { ...base, peerId: "16Uiu2HAmSpare", stages: [], sha256: SHA, planId: null },
    ],
  };
  const parsed = parseMeshStatus(makeMeshStatusEvent(RELAY_SK, split), { relayPubkey: RELAY_PK });
  assert.deepEqual(parsed, split);
  assert.deepEqual(parsed.serveTargets.map(isEntryTarget), [true, false, false]);
});
