import assert from "node:assert/strict";
import type { ServeTarget } from "../protocol/mod.ts";
import { isCode, never, remoteInit, target } from "../tests/support/serve-targets.ts";
import type { EmbedCall } from "./remote-embed.ts";
import { createRemoteService } from "./remote-service.ts";
import { createRouter } from "./router.ts";
import {
  type EmbedRequest,
  type EmbedResult,
  type InferenceService,
  ServiceError,
} from "./service.ts";

const REQ: EmbedRequest = { model: "m", embed: { input: ["a"] } };
const RESULT: EmbedResult = { data: [new Float32Array([1])], usage: { prompt_tokens: 2 } };

function remote(targets: ServeTarget[], embed: EmbedCall, local?: InferenceService) {
  return createRemoteService({ ...remoteInit(targets, local), router: createRouter(), embed });
}

Deno.test("embeddings go only to nodes that advertise them; a failed node is left for the next", async () => {
  const asked: string[] = [];
  const call: EmbedCall = (t) => {
    asked.push(t.peerId);
    if (t.peerId === "a") return Promise.reject(new ServiceError("unavailable", "it died"));
    return Promise.resolve(RESULT);
  };
  const service = remote(
    [target("a", ["embeddings"]), target("b", ["embeddings", "tools"]), target("c", ["tools"])],
    call,
  );
  assert.equal(await service.embed(REQ, never()), RESULT);
  assert.equal(await service.embed({ ...REQ, model: "Model M" }, never()), RESULT);
  assert.ok(!asked.includes("c"), "c lacks the feature");
  assert.ok(asked.includes("b"));
});

Deno.test("the request's own fault is not retried; no able node is a 400 naming embeddings", async () => {
  let calls = 0;
  const tooLong: EmbedCall = () => {
    calls++;
    return Promise.reject(new ServiceError("context_length_exceeded", "input[0] too long"));
  };
  const two = [target("a", ["embeddings"]), target("b", ["embeddings"])];
  await assert.rejects(remote(two, tooLong).embed(REQ, never()), isCode("context_length_exceeded"));
  assert.equal(calls, 1);

  const down: EmbedCall = () => Promise.reject(new ServiceError("unavailable", "gone"));
  await assert.rejects(
    remote(two, down).embed(REQ, never()),
    isCode("unavailable", /No serving node for `m` answered \(tried 2/),
  );
  await assert.rejects(
    remote([target("c", ["tools"]), target("d")], down).embed(REQ, never()),
    isCode(
      "invalid_request",
      /No serving node of `m` supports embeddings yet \(2 nodes serve it\)/,
    ),
  );
  await assert.rejects(
    remote(two, down).embed({ ...REQ, model: "other" }, never()),
    isCode("model_not_found", /`other` is not offered/),
  );
  await assert.rejects(
    remote([target("s", ["embeddings"], [])], down).embed(REQ, never()),
    isCode("unavailable", /split/),
  );
});

Deno.test("a serving node's own model embeds in process, never over the mesh", async () => {
  const local: InferenceService = {
    models: () => Promise.resolve([{ id: "own", name: "Own" }]),
    infer: () => {
      throw new Error("unused");
    },
    embed: (req) =>
      Promise.resolve({ ...RESULT, usage: { prompt_tokens: req.embed.input.length } }),
  };
  const mesh: EmbedCall = () => Promise.reject(new Error("the mesh was asked"));
  const service = remote([], mesh, local);
  assert.deepEqual(
    (await service.embed({ model: "Own", embed: { input: ["a", "b"] } }, never()))
      .usage,
    { prompt_tokens: 2 },
  );
  const plain = remote([], mesh, { ...local, embed: undefined });
  await assert.rejects(plain.embed({ ...REQ, model: "own" }, never()), isCode("invalid_request"));
});
