import assert from "node:assert/strict";
import type { MeshStatus, ServeTarget } from "../protocol/mod.ts";
import type { TokenizerCall } from "./remote-tokenizer.ts";
import { createRemoteService } from "./remote-service.ts";
import { createRouter } from "./router.ts";
import {
  type InferenceService,
  ServiceError,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "./service.ts";

function target(peerId: string, features?: string[]): ServeTarget {
  const t: ServeTarget = {
    modelId: "m",
    modelName: "Model M",
    peerId,
    pubkey: "0".repeat(64),
    nodeName: `node-${peerId}`,
    addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerId}`],
    stages: null,
    capacity: { memoryBytes: 1 },
    load: { active: 0, queued: 0 },
  };
  if (features) t.features = features;
  return t;
}

const status = (targets: ServeTarget[]): MeshStatus => ({
  v: 1,
  type: "mesh-status",
  updatedAt: 1,
  meshId: "x",
  serveTargets: targets,
  models: [{ id: "m", name: "Model M" }],
  peerCount: targets.length,
});

const REQ: TokenizerRequest = { model: "m", tokenize: { content: "hi" } };
const ANSWER: TokenizerAnswer = { kind: "tokenize", tokens: [5, 6] };
const never = () => new AbortController().signal;
const isCode = (code: string, re = /./) => (e: unknown) =>
  e instanceof ServiceError && e.code === code && re.test(e.message);

function remote(targets: ServeTarget[], tokenizer: TokenizerCall, local?: InferenceService) {
  return createRemoteService({
    call: () => {
      throw new Error("no generation here");
    },
    tokenizer,
    router: createRouter(),
    status: () => status(targets),
    admitted: () => true,
    local: local && { modelId: "own", service: local },
  });
}

Deno.test("tokenizer requests go only to nodes that advertise them; a failed node is left for the next", async () => {
  const asked: string[] = [];
  const call: TokenizerCall = (t) => {
    asked.push(t.peerId);
    if (t.peerId === "a") return Promise.reject(new ServiceError("unavailable", "it died"));
    return Promise.resolve(ANSWER);
  };
  const service = remote(
    [target("a", ["tokenize"]), target("b", ["tokenize", "tools"]), target("c", ["tools"])],
    call,
  );
  assert.equal(await service.tokenizer(REQ, never()), ANSWER);
  assert.equal(await service.tokenizer({ ...REQ, model: "Model M" }, never()), ANSWER);
  assert.ok(!asked.includes("c"), "c lacks the feature");
  assert.ok(asked.includes("b"));
});

Deno.test("the request's own fault is not retried; older nodes only, or no node, say so", async () => {
  let calls = 0;
  const badIds: TokenizerCall = () => {
    calls++;
    return Promise.reject(new ServiceError("invalid_request", "tokens must be token ids"));
  };
  const both = remote([target("a", ["tokenize"]), target("b", ["tokenize"])], badIds);
  await assert.rejects(
    both.tokenizer({ model: "m", detokenize: { tokens: [9] } }, never()),
    isCode("invalid_request", /token ids/),
  );
  assert.equal(calls, 1);

  const old = remote([target("a", ["tools"])], () => Promise.resolve(ANSWER));
  await assert.rejects(
    old.tokenizer(REQ, never()),
    isCode("unavailable", /No serving node of `m` answers \/tokenize.*1 node serves it/),
  );
  await assert.rejects(
    old.tokenizer({ ...REQ, model: "qwen" }, never()),
    isCode("model_not_found", /`qwen` is not offered/),
  );
  const dying = remote(
    [target("a", ["tokenize"]), target("b", ["tokenize"])],
    () => Promise.reject(new ServiceError("unavailable", "gone")),
  );
  await assert.rejects(dying.tokenizer(REQ, never()), isCode("unavailable", /tried 2/));
});

Deno.test("a serving node answers its own model in process, never over the mesh", async () => {
  const seen: TokenizerRequest[] = [];
  const own: InferenceService = {
    models: () => Promise.resolve([{ id: "own", name: "Own Model" }]),
    infer: () => {
      throw new Error("no generation here");
    },
    tokenizer: (req) => {
      seen.push(req);
      return Promise.resolve(ANSWER);
    },
  };
  const service = remote([target("a", ["tokenize"])], () => {
    throw new Error("not over the mesh");
  }, own);
  assert.equal(await service.tokenizer({ model: "own", props: {} }, never()), ANSWER);
  assert.equal(await service.tokenizer({ model: "Own Model", props: {} }, never()), ANSWER);
  assert.equal(seen.length, 2);
});
