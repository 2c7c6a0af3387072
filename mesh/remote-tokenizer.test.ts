import assert from "node:assert/strict";
import type { ServeTarget } from "../protocol/mod.ts";
import { isCode, never, remoteInit, target } from "../tests/support/serve-targets.ts";
import type { TokenizerCall } from "./remote-tokenizer.ts";
import { createRemoteService } from "./remote-service.ts";
import { createRouter } from "./router.ts";
import {
  type InferenceService,
  ServiceError,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "./service.ts";

const REQ: TokenizerRequest = { model: "m", tokenize: { content: "hi" } };
const ANSWER: TokenizerAnswer = { kind: "tokenize", tokens: [5, 6] };

function remote(targets: ServeTarget[], tokenizer: TokenizerCall, local?: InferenceService) {
  return createRemoteService({ ...remoteInit(targets, local), router: createRouter(), tokenizer });
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
