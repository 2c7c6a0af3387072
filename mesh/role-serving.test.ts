// The serving part with a stubbed node and relay and a fake clock: it answers /grove/infer/1 on
// the node and reports the local model, ready while it runs and "stopping" last.
import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import type { ServeReport } from "../protocol/mod.ts";
import { INFER_PROTOCOL } from "./infer-protocol.ts";
import { identityOf } from "./node-identity.ts";
import type { MeshNode } from "./p2p-node.ts";
import { createServingPart, type LocalModel } from "./role-serving.ts";
import { fakeClock } from "../tests/support/fake-clock.ts";

const identity = identityOf(generateSecretKey());
const ADDR = `/ip4/127.0.0.1/tcp/4001/p2p/${identity.peerId}`;
const local: LocalModel = {
  service: {
    models: () => Promise.resolve([]),
    infer: async function* () {},
    load: () => ({ active: 1, queued: 2 }),
  },
  modelId: "stories260K",
  modelName: "Stories 260K",
  capacity: { memoryBytes: 1_000_000 },
};

/** A relay side that never sends a mesh status (a whole model does not need one). */
const noStatus = {
  onStatus: () => () => {},
  view: { status: undefined, listed: false, removed: false },
};

Deno.test("serving part: answers /grove/infer/1 on the node and reports the model, 'stopping' last", async () => {
  const clock = fakeClock();
  const handled: string[] = [];
  const node = {
    handle: (protocol: string) => (handled.push(protocol), Promise.resolve()),
    directAddrs: () => [ADDR],
  } as unknown as MeshNode;
  const reports: ServeReport[] = [];
  const part = createServingPart({ identity, local, nodeName: "test node" }, {
    peer: { node: () => node },
    relay: {
      publish: (ev) => (reports.push(JSON.parse(ev.content)), Promise.resolve()),
      ...noStatus,
    },
    clock,
  });
  await part.start?.();
  await clock.settle();
  assert.deepEqual(handled, [INFER_PROTOCOL]);
  assert.deepEqual(reports, [{
    modelId: "stories260K",
    modelName: "Stories 260K",
    peerId: identity.peerId,
    nodeName: "test node",
    addrs: [ADDR],
    stages: null,
    capacity: { memoryBytes: 1_000_000 },
    load: { active: 1, queued: 2 },
    state: "ready",
  }]);
  await part.stop();
  assert.equal(reports.length, 2);
  assert.equal(reports[1].state, "stopping");
  assert.equal(clock.pending(), 0, "no report timer left after stop");
});

Deno.test("serving part: without a started node it fails at start, naming what it needs", async () => {
  const part = createServingPart({ identity, local, nodeName: "n" }, {
    peer: { node: () => undefined },
    relay: { publish: () => Promise.resolve(), ...noStatus },
  });
  await assert.rejects(Promise.resolve(part.start?.()), /needs the libp2p node started first/);
});

Deno.test("serving part: the report lists the features the local service honours", async () => {
  const clock = fakeClock();
  const node = {
    handle: () => Promise.resolve(),
    directAddrs: () => [ADDR],
  } as unknown as MeshNode;
  const reports: ServeReport[] = [];
  const withFeatures = {
    ...local,
    service: { ...local.service, features: () => ["logit_bias", "penalties"] },
  };
  const part = createServingPart({ identity, local: withFeatures, nodeName: "n" }, {
    peer: { node: () => node },
    relay: {
      publish: (ev) => (reports.push(JSON.parse(ev.content)), Promise.resolve()),
      ...noStatus,
    },
    clock,
  });
  await part.start?.();
  await clock.settle();
  assert.deepEqual(reports[0].features, ["logit_bias", "penalties"]);
  await part.stop();
});
