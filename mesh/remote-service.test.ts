import assert from "node:assert/strict";
import type { MeshStatus, ServeTarget } from "../protocol/mod.ts";
import { createRemoteService, type InferCall, type RemoteServiceInit } from "./remote-service.ts";
import { createRouter } from "./router.ts";
import {
  type InferenceService,
  type InferEvent,
  type InferRequest,
  MESH_DENIED_MESSAGE,
} from "./service.ts";
import { doneEvent } from "../tests/support/fake-service.ts";

function target(
  peerId: string,
  modelId = "stories260K",
  stages: [number, number][] | null = null,
): ServeTarget {
  return {
    modelId,
    modelName: modelId,
    peerId,
    pubkey: "0".repeat(64),
    nodeName: `node-${peerId}`,
    addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerId}`],
    stages,
    capacity: { memoryBytes: 1 },
    load: { active: 0, queued: 0 },
  };
}

function status(targets: ServeTarget[]): MeshStatus {
  return {
    v: 1,
    type: "mesh-status",
    updatedAt: 1,
    meshId: "m",
    serveTargets: targets,
    models: targets.map((t) => ({ id: t.modelId, name: t.modelName })),
    peerCount: targets.length,
  };
}

const done: InferEvent = doneEvent(3, 2);
const tok = (text: string): InferEvent => ({ type: "token", text, id: 1 });
const req: InferRequest = { model: "stories260K", prompt: "Once", params: {} };

async function collect(service: InferenceService, r = req): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const e of service.infer(r, new AbortController().signal)) out.push(e);
  return out;
}

function service(over: Partial<RemoteServiceInit> & { call: InferCall }) {
  return createRemoteService({
    router: createRouter(),
    status: () => status([target("a"), target("b")]),
    admitted: () => true,
    ...over,
  });
}

Deno.test("remote: a denied node answers mesh_denied with the set text, models() too", async () => {
  const s = service({
    call: () => {
      throw new Error("must not be called");
    },
    admitted: () => ({ denied: true, reason: "not a member" }),
  });
  const events = await collect(s);
  assert.deepEqual(events, [{ type: "error", code: "mesh_denied", message: MESH_DENIED_MESSAGE }]);
  await assert.rejects(s.models(), { code: "mesh_denied", message: MESH_DENIED_MESSAGE });
});

Deno.test("remote: models are the mesh's, once each, plus the local one; unknown → 404", async () => {
  const local: InferenceService = {
    models: () => Promise.resolve([{ id: "mine", name: "Mine" }]),
    infer: async function* () {
      yield tok("local");
      yield done;
    },
  };
  const s = service({
    call: () => {
      throw new Error("unused");
    },
    status: () => status([target("a"), target("b"), target("c", "other"), target("self", "x")]),
    selfPeerId: "self",
    local: { modelId: "mine", service: local },
  });
  assert.deepEqual((await s.models()).map((m) => m.id), ["mine", "stories260K", "other"]);
  assert.deepEqual((await collect(s, { ...req, model: "mine" }))[0], tok("local"));
  const [missing] = await collect(s, { ...req, model: "nope" });
  assert.equal(missing.type === "error" && missing.code, "model_not_found");
  assert.match((missing as { message: string }).message, /`nope`.*offered: stories260K, other/);
});

Deno.test("remote: a peer failing before its first token is skipped for another", async () => {
  const calls: string[] = [];
  const router = createRouter();
  const s = service({
    router,
    call: async function* (t) {
      calls.push(t.peerId);
      if (calls.length === 1) throw new Error("connection refused");
      yield tok("Once");
      yield done;
    },
  });
  const events = await collect(s);
  assert.deepEqual(events, [tok("Once"), done]);
  assert.equal(calls.length, 2);
  assert.notEqual(calls[0], calls[1]);
  // The failed peer is left out of the next requests.
  const next = await collect(s);
  assert.equal(next.length, 2);
  assert.equal(calls[2], calls[1]);
});

Deno.test("remote: after tokens, a dead stream ends with a clear unavailable error", async () => {
  const s = service({
    call: async function* () {
      yield tok("Once");
      throw new Error("stream reset");
    },
  });
  const events = await collect(s);
  assert.deepEqual(events[0], tok("Once"));
  assert.equal(events.length, 2);
  const last = events[1];
  assert.ok(last.type === "error" && last.code === "unavailable");
  assert.match(last.message, /node-[ab] failed: stream reset mid-generation/);
});

Deno.test("remote: every peer failing gives one unavailable error naming the tries", async () => {
  let calls = 0;
  const s = service({
    retryMs: 0, // each node once (the pauses and later rounds have their own test)
    call: async function* () {
      calls++;
      yield { type: "error", code: "unavailable", message: "busy dying" } as InferEvent;
    },
  });
  const events = await collect(s);
  assert.equal(calls, 2, "each peer once, no more");
  assert.equal(events.length, 1);
  assert.ok(events[0].type === "error" && events[0].code === "unavailable");
  assert.match(events[0].message, /tried 2: node-.: busy dying; node-.: busy dying/);
  // A request error from the peer (not its health) passes through untouched, without retries.
  const bad = service({
    call: async function* () {
      yield { type: "error", code: "context_length_exceeded", message: "too long" } as InferEvent;
    },
  });
  assert.deepEqual(await collect(bad), [
    { type: "error", code: "context_length_exceeded", message: "too long" },
  ]);
});

Deno.test("remote: a caller that stops reading closes the peer's stream", async () => {
  let closed = false;
  const s = service({
    call: async function* () {
      try {
        for (let i = 0; i < 100; i++) yield tok(`t${i}`);
      } finally {
        closed = true;
      }
    },
  });
  const ac = new AbortController();
  for await (const e of s.infer(req, ac.signal)) {
    if (e.type === "token") break;
  }
  assert.ok(closed);
  assert.equal(s.load().active, 0);
});

Deno.test("remote: a request refused as invalid counts against no peer", async () => {
  // What callInfer yields for a request it will not send (bad params, over 8 MiB), and what a
  // serving node answers to one it will not run: the request's fault, not the peer's.
  const router = createRouter();
  const failed: string[] = [];
  const picked: string[] = [];
  const s = service({
    router: { ...router, markFailed: (peer) => failed.push(peer) },
    status: () => status([target("a")]),
    async *call(t, r) {
      picked.push(t.peerId);
      if (r.prompt === "bad") {
        yield { type: "error", code: "invalid_request", message: "params.stop must be …" };
      } else yield done;
    },
  });
  const bad = await collect(s, { ...req, prompt: "bad" });
  assert.deepEqual(bad.map((e) => e.type === "error" && e.code), ["invalid_request"]);
  assert.deepEqual(await collect(s), [done]);
  assert.deepEqual(picked, ["a", "a"]);
  assert.deepEqual(failed, []);
});

Deno.test("remote: a busy node is passed over for another but not avoided afterwards", async () => {
  const router = createRouter();
  const failed: string[] = [];
  const picked: string[] = [];
  const s = service({
    router: { ...router, markFailed: (peer) => failed.push(peer) },
    async *call(t) {
      picked.push(t.peerId);
      if (picked.length === 1) {
        yield { type: "error", code: "busy", message: "this node is busy: 256 requests wait" };
      } else yield done;
    },
  });
  assert.deepEqual(await collect(s), [done]);
  assert.equal(picked.length, 2);
  assert.notEqual(picked[0], picked[1]);
  assert.deepEqual(failed, [], "a full queue is load, not a failure");
});

Deno.test("remote: only entry targets are picked; a waiting candidate or middle stage never", async () => {
  const picked: string[] = [];
  const targets = [
    target("waiting", "stories260K", []),
    target("middle", "stories260K", [[2, 4]]),
    target("stage0", "stories260K", [[0, 2]]),
    target("whole", "stories260K", null),
  ];
  const s = service({
    status: () => status(targets),
    async *call(t) {
      picked.push(t.peerId);
      yield done;
    },
  });
  for (let i = 0; i < 8; i++) assert.deepEqual(await collect(s), [done]);
  assert.deepEqual([...new Set(picked)].sort(), ["stage0", "whole"]);

  // Even when every entry target failed lately, the others are not fallen back on.
  const failing = service({
    status: () => status(targets),
    call(t) {
      picked.push(t.peerId);
      throw new Error("connection refused");
    },
    maxTries: 4,
    retryMs: 0, // one round
  });
  picked.length = 0;
  const [err] = await collect(failing);
  assert.ok(err.type === "error" && err.code === "unavailable");
  assert.deepEqual(picked.sort(), ["stage0", "whole"]);
});

Deno.test("remote: models() lists a model only when an entry target offers it", async () => {
  const s = service({
    call: () => {
      throw new Error("must not be called");
    },
    status: () =>
      status([
        target("w", "waiting-model", []),
        target("m", "middle-model", [[2, 4]]),
        target("s", "staged-model", [[0, 2]]),
        target("s2", "staged-model", [[2, 4]]),
        target("h", "whole-model", null),
      ]),
  });
  assert.deepEqual((await s.models()).map((m) => m.id), ["staged-model", "whole-model"]);
});

Deno.test("remote: a model only split candidates hold is unavailable, not unknown", async () => {
  const s = service({
    call: () => {
      throw new Error("must not be called");
    },
    status: () => status([target("w", "big", []), target("m", "big", [[2, 4]])]),
  });
  const [err] = await collect(s, { ...req, model: "big" });
  assert.ok(err.type === "error" && err.code === "unavailable");
  assert.match(err.message, /`big` is being split.*not all ready yet \(2 split candidates known\)/);
  const [unknown] = await collect(s, { ...req, model: "nope" });
  assert.ok(unknown.type === "error" && unknown.code === "model_not_found");
  assert.match(unknown.message, /\(no model is offered\)/);
});

Deno.test("remote: a request needing a feature goes only to a node that advertises it", async () => {
  const plain = target("a");
  const biased = { ...target("b"), features: ["logit_bias", "penalties"] };
  const seen: string[] = [];
  const s = service({
    status: () => status([plain, biased]),
    call: async function* (t) {
      seen.push(t.peerId);
      yield done;
    },
  });
  const bias = { ...req, params: { logit_bias: { "5": -100 } } };
  for (let i = 0; i < 4; i++) assert.deepEqual(await collect(s, bias), [done]);
  assert.deepEqual(seen, ["b", "b", "b", "b"]);
  // Zero penalties and an empty bias need nothing: either node may take them.
  seen.length = 0;
  const none = { ...req, params: { presence_penalty: 0, frequency_penalty: 0, logit_bias: {} } };
  for (let i = 0; i < 6; i++) await collect(s, none);
  assert.deepEqual(new Set(seen), new Set(["a", "b"]));
});

Deno.test("remote: when no node has a feature the request needs, a 400 names it and the model", async () => {
  const calls: string[] = [];
  const s = service({
    status: () => status([target("a"), { ...target("b"), features: ["penalties"] }]),
    call: async function* (t) {
      calls.push(t.peerId);
      yield done;
    },
  });
  const constrained = { ...req, params: { constraint: { type: "json_object" as const } } };
  const [err] = await collect(s, constrained);
  assert.deepEqual(err, {
    type: "error",
    code: "invalid_request",
    message: "No serving node of `stories260K` supports response_format yet (2 nodes serve it).",
  });
  const both = { ...req, params: { frequency_penalty: 1, logit_bias: { "1": 2 } } };
  const [err2] = await collect(s, both);
  assert.match(
    err2.type === "error" ? err2.message : "",
    /^No serving node of `stories260K` supports logit_bias yet/,
    "node b lacks only logit_bias",
  );
  assert.deepEqual(calls, [], "no node was asked");
});

Deno.test("remote: a node dying mid-answer is continued on another with the tokens so far; the caller sees each token and call once", async () => {
  const resumable = (id: string) => ({ ...target(id), features: ["resume", "tools"] });
  const seen: InferRequest[] = [];
  const t = (id: number, text: string, rng?: number[]): InferEvent => ({
    type: "token",
    text,
    id,
    ...(rng ? { rng } : {}),
  });
  const call: InferCall = async function* (_target, r) {
    seen.push(r);
    if (seen.length === 1) {
      yield t(5, "Once", [1, 1, 1, 1]);
      yield { type: "tool_call", index: 0, id: "call_a", name: "f", arguments: "{}" };
      yield t(6, " upon", [2, 2, 2, 2]);
      throw new Error("no message from the peer for 3000 ms");
    }
    // The continuing node sends the answer so far again, then goes on.
    yield t(5, "Once");
    yield { type: "tool_call", index: 0, id: "call_b", name: "f", arguments: "{}" };
    yield t(6, " upon");
    yield t(7, " a", [3, 3, 3, 3]);
    yield done;
  };
  const s = service({
    call,
    status: () => status([resumable("a"), resumable("b")]),
  });
  const events = await collect(s, { ...req, params: { temperature: 0.8, seed: 3 } });
  assert.deepEqual(events.map((e) => e.type === "token" ? e.text : e.type), [
    "Once",
    "tool_call",
    " upon",
    " a",
    "done",
  ]);
  assert.equal((events[1] as { id: string }).id, "call_a", "the first node's call, once");
  assert.equal(seen[0].resumable, true, "a sampled answer asks for the RNG state");
  assert.equal(seen[0].resume, undefined);
  assert.deepEqual(seen[1].resume, { tokens: [5, 6], rng: [2, 2, 2, 2] });

  // Greedy needs no RNG state; with no node left to continue, the error says what happened.
  seen.length = 0;
  const alone = service({ call, status: () => status([resumable("a")]) });
  const cut = await collect(alone, { ...req, params: { temperature: 0 } });
  assert.equal(seen[0].resumable, undefined);
  const last = cut.at(-1)!;
  assert.ok(last.type === "error" && last.code === "unavailable");
  assert.match(
    last.message,
    /node-a failed: no message .* mid-generation; no other node could continue it/,
  );
});

Deno.test("remote: a sampled answer whose node sent no RNG state is not continued, and a node without resume is never asked", async () => {
  const calls: InferRequest[] = [];
  const s = service({
    status: () => status([{ ...target("a"), features: ["resume"] }, target("b")]),
    call: async function* (_t, r) {
      calls.push(r);
      yield tok("Once");
      throw new Error("stream reset");
    },
  });
  const events = await collect(s, { ...req, params: { temperature: 0 } });
  // Whichever node began, the other cannot continue: b lacks resume, and a began or a is b's.
  assert.ok(calls.length <= 2);
  assert.ok(calls.slice(1).every((r) => r.resume !== undefined));
  assert.equal(events.at(-1)!.type, "error");
  calls.length = 0;
  const sampled = await collect(s, { ...req, params: { temperature: 1 } });
  assert.equal(calls.length, 1, "no continuation without the RNG state");
  assert.match((sampled.at(-1) as { message: string }).message, /no other node could continue/);
});

/** A clock that only the fake sleep moves, and a log that keeps its lines. */
function fakeTime() {
  let clock = 0;
  const pauses: number[] = [];
  const lines: string[] = [];
  const keep = (line: string) => void lines.push(line);
  return {
    now: () => clock,
    sleep: (ms: number) => {
      pauses.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    pauses,
    lines,
    log: { debug: keep, info: keep, warn: keep, error: keep },
  };
}

Deno.test("remote: the only node failing before its first token is tried again after a pause until it answers, each retry one log line", async () => {
  const time = fakeTime();
  let calls = 0;
  const s = service({
    ...time,
    status: () => status([target("a")]),
    call: async function* () {
      // A node under load: its dials time out four times, then it answers.
      if (++calls <= 4) throw new Error("no ticket exchange within 5000 ms");
      yield tok("Once");
      yield done;
    },
  });
  assert.deepEqual(await collect(s), [tok("Once"), done]);
  assert.equal(calls, 5);
  assert.equal(time.pauses.length, 4, "a pause before each new round");
  assert.ok(time.pauses[3] > time.pauses[0], `pauses grow: ${time.pauses}`);
  const retries = time.lines.filter((l) => /^retrying a request for stories260K on node-a/.test(l));
  assert.equal(retries.length, 4, time.lines.join("\n"));
  assert.match(retries[0], /try 2, .*node-a: no ticket exchange within 5000 ms/);
});

Deno.test("remote: a request every node keeps failing ends unavailable once the retry bound is spent", async () => {
  const time = fakeTime();
  const picked: string[] = [];
  const s = service({
    ...time,
    retryMs: 10_000,
    call: async function* (t) {
      picked.push(t.peerId);
      yield* [];
      throw new Error(
        `could not open a stream to serving node ${t.peerId}: timed out after 10000 ms`,
      );
    },
  });
  const events = await collect(s);
  assert.equal(events.length, 1);
  assert.ok(events[0].type === "error" && events[0].code === "unavailable");
  assert.match(events[0].message, /No serving node for `stories260K` answered \(tried \d+: /);
  assert.ok(time.now() <= 10_000, `the bound holds: ${time.now()} ms`);
  assert.ok(picked.length >= 8, `rounds until the bound: ${picked.length} tries`);
  // Each round tries both nodes once.
  for (let i = 0; i + 1 < picked.length; i += 2) assert.notEqual(picked[i], picked[i + 1]);
  assert.match(time.lines.at(-1)!, /gave up on a request for stories260K after \d+ tries/);

  // Nodes that refuse the connection (killed) are not there to wait for: one round, no pause.
  const refused = fakeTime();
  picked.length = 0;
  const gone = service({
    ...refused,
    call: async function* (t) {
      picked.push(t.peerId);
      yield* [];
      throw new Error("could not open a stream: connect ECONNREFUSED 10.0.0.1:4001");
    },
  });
  assert.equal((await collect(gone))[0].type, "error");
  assert.equal(picked.length, 2);
  assert.deepEqual(refused.pauses, []);
});

Deno.test("remote: when the node continuing an answer fails before adding to it, the next node continues", async () => {
  const time = fakeTime();
  const resumable = (id: string) => ({ ...target(id), features: ["resume"] });
  const order: string[] = [];
  const s = service({
    ...time,
    status: () => status([resumable("a"), resumable("b"), resumable("c")]),
    call: async function* (t, r) {
      order.push(t.peerId);
      if (order.length === 1) {
        yield { type: "token", text: "Once", id: 5 };
        throw new Error("no message from the peer for 3000 ms");
      }
      if (order.length === 2) throw new Error("no ticket exchange within 5000 ms");
      assert.deepEqual(r.resume, { tokens: [5] });
      yield { type: "token", text: "Once", id: 5 };
      yield { type: "token", text: " upon", id: 6 };
      yield done;
    },
  });
  const events = await collect(s, { ...req, params: { temperature: 0 } });
  assert.deepEqual(events.map((e) => e.type === "token" ? e.text : e.type), [
    "Once",
    " upon",
    "done",
  ]);
  assert.equal(new Set(order).size, 3, `three different nodes: ${order}`);
  const failovers = time.lines.filter((l) => /^failing over an answer of stories260K/.test(l));
  assert.equal(failovers.length, 2, time.lines.join("\n"));
  assert.match(failovers[0], /after 1 tokens .*no message from the peer/);
  assert.match(failovers[1], /no ticket exchange within 5000 ms/);
});

Deno.test("remote: a node dying after the last token max_tokens allows, before its done, is continued from the token before", async () => {
  const resumable = (id: string) => ({ ...target(id), features: ["resume"] });
  const seen: InferRequest[] = [];
  const t = (id: number, rng: number[]): InferEvent => ({ type: "token", text: `t${id}`, id, rng });
  const s = service({
    status: () => status([resumable("a"), resumable("b")]),
    call: async function* (_target, r) {
      seen.push(r);
      if (seen.length === 1) {
        yield t(5, [1, 1, 1, 1]);
        yield t(6, [2, 2, 2, 2]);
        throw new Error("no message from the peer for 3000 ms");
      }
      yield t(5, [1, 1, 1, 1]);
      yield t(6, [2, 2, 2, 2]); // drawn again from the state after t5: the same token
      yield done;
    },
  });
  const events = await collect(s, { ...req, params: { temperature: 0.8, max_tokens: 2 } });
  assert.deepEqual(events.map((e) => e.type === "token" ? e.text : e.type), ["t5", "t6", "done"]);
  assert.deepEqual(seen[1].resume, { tokens: [5], rng: [1, 1, 1, 1] });
});

Deno.test("remote: an answer cut mid-stream is not handed to a node whose pings go unanswered; it ends at once", async () => {
  const time = fakeTime();
  const resumable = (id: string) => ({ ...target(id), features: ["resume"] });
  const router = createRouter();
  router.markSilent("b"); // peer-watch saw its pings go unanswered: b is frozen too
  const order: string[] = [];
  const s = service({
    ...time,
    router,
    status: () => status([resumable("a"), resumable("b")]),
    call: async function* (t) {
      order.push(t.peerId);
      yield { type: "token", text: "Once", id: 5 };
      throw new Error("no message from the peer for 3000 ms");
    },
  });
  const events = await collect(s, { ...req, params: { temperature: 0 } });
  assert.deepEqual(order, ["a"], "b was never asked");
  const last = events.at(-1)!;
  assert.equal(last.type, "error");
  assert.match(last.type === "error" ? last.message : "", /no other node could continue it/);
});
