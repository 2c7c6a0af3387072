/**
 * Tool calls over /grove/infer/1: a serving node's tool_call events reach the client between its
 * tokens and its done, and a client refuses calls the request did not allow (a serving member is
 * not trusted); a tool_call ends neither the server's loop, a remote attempt, nor its metrics.
 */
import assert from "node:assert/strict";
import { callInfer, serveInfer } from "./infer-protocol.ts";
import { withMesh } from "../tests/support/p2p-test-kit.ts";
import { countServed, type ServedRecord } from "./served.ts";
import type {
  DoneEvent,
  InferenceService,
  InferEvent,
  InferRequest,
  ToolCallEvent,
} from "./service.ts";
import { createRemoteService } from "./remote-service.ts";
import { createRouter } from "./router.ts";
import { requestFeatures } from "./request-features.ts";

const REQ: InferRequest = {
  model: "stub",
  messages: [{ role: "user", content: "Weather?" }],
  params: { max_tokens: 50 },
  tools: [{ type: "function", function: { name: "get_weather" } }],
};

const DONE: DoneEvent = {
  type: "done",
  finish_reason: "tool_calls",
  usage: { prompt_tokens: 1, completion_tokens: 2 },
  timings: {
    queued_ms: 0,
    prompt_n: 1,
    prompt_ms: 0,
    prompt_per_second: 0,
    predicted_n: 2,
    predicted_ms: 0,
    predicted_per_second: 0,
  },
};

const call = (over: Partial<ToolCallEvent> = {}): ToolCallEvent => ({
  type: "tool_call",
  index: 0,
  id: "call_1",
  name: "get_weather",
  arguments: '{"city":"Oslo"}',
  ...over,
});

/** A service answering every request with `answer`. */
function scripted(answer: InferEvent[]): InferenceService {
  return {
    models: () => Promise.resolve([{ id: "stub", name: "stub" }]),
    async *infer() {
      yield* answer;
    },
  };
}

async function collect(events: AsyncIterable<InferEvent>): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const ev of events) out.push(ev);
  return out;
}

const tokens: InferEvent[] = [
  { type: "token", text: "", id: 1 },
  { type: "token", text: "", id: 2 },
];

Deno.test("tool_call events cross the mesh; calls the request did not allow are refused", async () => {
  await withMesh(async (mesh) => {
    const ask = async (answer: InferEvent[], req = REQ) => {
      const server = await mesh.node();
      await serveInfer(server, scripted(answer));
      const client = await mesh.node();
      const target = { peerId: server.peerId, addrs: server.directAddrs() };
      return await collect(callInfer(client, target, req, AbortSignal.timeout(5000))).then(
        (events) => ({ events, error: undefined }),
        (error: Error) => ({ events: [], error: error.message }),
      );
    };
    const good = [...tokens, call(), DONE];
    assert.deepEqual((await ask(good)).events, good);
    const refusals: [string, InferEvent[], InferRequest?][] = [
      ["a tool the request did not offer", [...tokens, call({ name: "rm_rf" }), DONE]],
      ["a call with tool_choice none", good, { ...REQ, tool_choice: "none" }],
      ["a call without tools", good, { ...REQ, tools: undefined }],
      ["calls out of order", [...tokens, call({ index: 1 }), DONE]],
      ["a call before any token", [call(), DONE]],
      ["arguments that are no object", [...tokens, call({ arguments: "[1]" }), DONE]],
      ["arguments that are no JSON", [...tokens, call({ arguments: "{" }), DONE]],
      ["an empty id", [...tokens, call({ id: "" }), DONE]],
    ];
    for (const [what, answer, req] of refusals) {
      const got = await ask(answer, req);
      assert.ok(got.error !== undefined, `${what}: ${JSON.stringify(got.events)}`);
      assert.match(got.error, /tool call|malformed tool_call/, what);
    }
  });
});

Deno.test("a tool_call ends neither a remote attempt nor the served record", async () => {
  const answer = [...tokens, call(), DONE];
  const records: ServedRecord[] = [];
  const served = countServed(scripted(answer), { onServed: (r) => records.push(r) });
  assert.deepEqual(await collect(served.infer(REQ, new AbortController().signal)), answer);
  assert.equal(records[0].outcome, "ok");
  assert.equal(records[0].completionTokens, 2);
  const remote = createRemoteService({
    call: () => scripted(answer).infer(REQ, new AbortController().signal),
    router: createRouter(),
    status: () => ({
      v: 1,
      type: "mesh-status",
      updatedAt: 1,
      meshId: "m",
      serveTargets: [{
        modelId: "stub",
        modelName: "stub",
        peerId: "p1",
        pubkey: "0".repeat(64),
        nodeName: "n1",
        addrs: [],
        stages: null,
        capacity: { memoryBytes: 1 },
        load: { active: 0, queued: 0 },
        features: ["tools"],
      }],
      models: [{ id: "stub", name: "stub" }],
      peerCount: 1,
    }),
    admitted: () => true,
  });
  assert.deepEqual(await collect(remote.infer(REQ, new AbortController().signal)), answer);
});

Deno.test("a request offering tools needs a node with tools; a forced call, one that constrains", () => {
  assert.deepEqual(requestFeatures(REQ), ["tools"]);
  assert.deepEqual(requestFeatures({ ...REQ, tool_choice: "required" }), ["constraint", "tools"]);
  const named = { type: "function" as const, function: { name: "get_weather" } };
  assert.deepEqual(requestFeatures({ ...REQ, tool_choice: named }), ["constraint", "tools"]);
  assert.deepEqual(requestFeatures({ ...REQ, tool_choice: "none" }), []);
  assert.deepEqual(requestFeatures({ ...REQ, tools: [] }), []);
});
