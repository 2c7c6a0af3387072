import assert from "node:assert/strict";
import { createCpuEngine, type Engine } from "../inference/mod.ts";
import { INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
import { createLocalService } from "./local-service.ts";
import { localTokenizerAnswer } from "./local-tokenizer.ts";
import type { MeshNode } from "./p2p-node.ts";
import { encodeFrame } from "../protocol/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { withMesh } from "../tests/support/p2p-test-kit.ts";
import { type InferenceService, ServiceError, type TokenizerRequest } from "./service.ts";
import { callTokenizer } from "./tokenizer-protocol.ts";

let shared: Engine | undefined;
const engine = async () => shared ??= await createCpuEngine({ path: STORIES, ctxSize: 128 });

const opener = (client: MeshNode, server: MeshNode) => (signal: AbortSignal) =>
  client.dialProtocol(server.peerId, server.directAddrs(), INFER_PROTOCOL, signal);
const never = () => new AbortController().signal;
const isCode = (code: string, re = /./) => (e: unknown) =>
  e instanceof ServiceError && e.code === code && re.test(e.message);

Deno.test("tokenizer requests over /grove/infer/1: a peer gets what the serving node answers itself", async () => {
  const service = createLocalService({
    engine: await engine(),
    id: "stories260K",
    maxConcurrent: 2,
  });
  try {
    assert.ok(service.features().includes("tokenize"), "advertised to clients");
    await withMesh(async (mesh) => {
      const server = await mesh.node();
      await serveInfer(server, service);
      const open = opener(await mesh.node(), server);
      const text = "Once upon a time, Lily <s> saw a ball.";
      const requests: TokenizerRequest[] = [
        { model: "stories260K", tokenize: { content: text } },
        { model: "stories260K", tokenize: { content: text, add_special: true, with_pieces: true } },
        { model: "stories260K", tokenize: { content: text, parse_special: false } },
        { model: "stories260K", detokenize: { tokens: [1, 403, 407, 261, 378] } },
        { model: "stories260K", props: {} },
      ];
      for (const req of requests) {
        const got = await callTokenizer(open, req, never());
        assert.deepEqual(got, localTokenizerAnswer(service.view(), req), JSON.stringify(req));
      }
      const tokens = await callTokenizer(open, requests[0], never());
      assert.ok(tokens.kind === "tokenize" && tokens.tokens.length > 5);

      // Refusals travel with their code; one no node would take never dials.
      await assert.rejects(
        callTokenizer(open, { model: "stories260K", detokenize: { tokens: [1, 512] } }, never()),
        isCode("invalid_request", /from 0 to 511; got 512/),
      );
      await assert.rejects(
        callTokenizer(open, { model: "qwen", props: {} }, never()),
        isCode("model_not_found", /serves `stories260K`/),
      );
      let dialed = false;
      const unused = () => {
        dialed = true;
        return Promise.reject(new Error("unused"));
      };
      const big = "a".repeat(256 * 1024 + 1);
      await assert.rejects(
        callTokenizer(unused, { model: "stories260K", tokenize: { content: big } }, never()),
        isCode("invalid_request", /over 256 KiB/),
      );
      assert.equal(dialed, false);
    });
  } finally {
    service.close();
  }
});

Deno.test("a node without a tokenizer refuses by name; a lying one is the node's failure", async () => {
  await withMesh(async (mesh) => {
    const bare: InferenceService = {
      models: () => Promise.resolve([{ id: "m", name: "m" }]),
      infer: () => {
        throw new Error("no generation here");
      },
    };
    const a = await mesh.node();
    await serveInfer(a, bare);
    const client = await mesh.node();
    await assert.rejects(
      callTokenizer(opener(client, a), { model: "m", props: {} }, never()),
      isCode("invalid_request", /answers no tokenizer requests/),
    );

    // A member whose node answers more tokens than the text can make.
    const liar = await mesh.node();
    await liar.handle(INFER_PROTOCOL, (stream) => {
      stream.send(encodeFrame({ type: "tokenized", tokens: new Array(100).fill(7) }));
      stream.send(
        encodeFrame({ type: "done", usage: { prompt_tokens: 100, completion_tokens: 0 } }),
      );
    });
    await assert.rejects(
      callTokenizer(opener(client, liar), { model: "m", tokenize: { content: "hi" } }, never()),
      isCode("unavailable", /more tokens than the text can make/),
    );
  });
});
