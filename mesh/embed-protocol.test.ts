import assert from "node:assert/strict";
import { answerReader, callEmbed } from "./embed-protocol.ts";
import { encodeVector } from "./embed-request.ts";
import { INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
import type { MeshNode } from "./p2p-node.ts";
import { withMesh } from "../tests/support/p2p-test-kit.ts";
import { eventually } from "../tests/support/poll.ts";
import {
  type EmbedRequest,
  type EmbedResult,
  type InferenceService,
  ServiceError,
} from "./service.ts";

const REQ: EmbedRequest = { model: "stub", embed: { input: ["a", [1, 2, 3]] } };

/** A unit vector along axis `i` of `dim`, scaled by `scale` (1: a valid embedding). */
function axis(i: number, dim = 8, scale = 1): Float32Array {
  const v = new Float32Array(dim);
  v[i] = scale;
  return v;
}

function stub(embed?: InferenceService["embed"]): InferenceService {
  return {
    models: () => Promise.resolve([{ id: "stub", name: "stub" }]),
    infer: () => {
      throw new Error("no generation in these tests");
    },
    embed,
  };
}

async function pair(
  mesh: Parameters<Parameters<typeof withMesh>[0]>[0],
  service: InferenceService,
  keepAliveMs = 5000,
) {
  const server = await mesh.node();
  await serveInfer(server, service, undefined, { keepAliveMs });
  const client = await mesh.node();
  return { server, client };
}

const opener = (client: MeshNode, server: MeshNode) => (signal: AbortSignal) =>
  client.dialProtocol(server.peerId, server.directAddrs(), INFER_PROTOCOL, signal);

const isCode = (code: string, re = /./) => (e: unknown) =>
  e instanceof ServiceError && e.code === code && re.test(e.message);

Deno.test("embeddings over /grove/infer/1: one exact vector per input, in order, and the usage", async () => {
  await withMesh(async (mesh) => {
    const seen: EmbedRequest[] = [];
    const service = stub((req) => {
      seen.push(req);
      const data = req.embed.input.map((_, i) => axis(i));
      data[0] = Float32Array.from([0.6, -0.8, 0, 0, 0, 0, 0, Math.fround(1e-8)]);
      return Promise.resolve({ data, usage: { prompt_tokens: 5 } });
    });
    const { server, client } = await pair(mesh, service);
    const got = await callEmbed(opener(client, server), REQ, new AbortController().signal);
    assert.deepEqual(seen, [REQ]);
    assert.deepEqual(got.data, [
      Float32Array.from([0.6, -0.8, 0, 0, 0, 0, 0, Math.fround(1e-8)]),
      axis(1),
    ]);
    assert.deepEqual(got.usage, { prompt_tokens: 5 });
  });
});

Deno.test("refusals travel with their code; a request no node takes never dials", async () => {
  await withMesh(async (mesh) => {
    const tooLong = stub(() =>
      Promise.reject(new ServiceError("context_length_exceeded", "input[1]: too long"))
    );
    const { server, client } = await pair(mesh, tooLong);
    const signal = new AbortController().signal;
    await assert.rejects(
      callEmbed(opener(client, server), REQ, signal),
      isCode("context_length_exceeded", /input\[1\]/),
    );
    const plain = await pair(mesh, stub());
    await assert.rejects(
      callEmbed(opener(plain.client, plain.server), REQ, signal),
      isCode("invalid_request", /serves no embeddings/),
    );
    let dialed = false;
    const open = () => {
      dialed = true;
      return Promise.reject(new Error("unused"));
    };
    await assert.rejects(
      callEmbed(open, { model: "stub", embed: { input: [] } }, signal),
      isCode("invalid_request", /embed\.input/),
    );
    assert.equal(dialed, false);
  });
});

Deno.test("a long batch is kept alive by queued frames; the client's leaving cancels it", async () => {
  await withMesh(async (mesh) => {
    const signals: AbortSignal[] = [];
    const service = stub(async (req, signal) => {
      signals.push(signal);
      // Slower than the client's idle limit, as a big batch on a busy node is.
      await new Promise((r) => setTimeout(r, 700));
      return { data: req.embed.input.map(() => axis(2)), usage: { prompt_tokens: 4 } };
    });
    const { server, client } = await pair(mesh, service, 50);
    const got = await callEmbed(opener(client, server), REQ, new AbortController().signal, {
      idleMs: 300,
    });
    assert.equal(got.data.length, 2);

    const leaving = new AbortController();
    const call = callEmbed(opener(client, server), REQ, leaving.signal);
    await eventually(() => signals.length === 2, { timeoutMs: 5000, what: "the second request" });
    leaving.abort();
    await assert.rejects(call, isCode("unavailable"));
    await eventually(() => signals[1].aborted, {
      timeoutMs: 2000,
      what: "the server kept computing for a client that left",
    });
  });
});

Deno.test("an answer that breaks the rules is the node's failure, not a result", () => {
  const vec = (i: number, v = axis(0)) => ({
    type: "embedding",
    index: i,
    embedding: encodeVector(v),
  });
  const done = (n = 2) => ({ type: "done", usage: { prompt_tokens: n, completion_tokens: 0 } });
  const read = (frames: unknown[], inputs = 2): EmbedResult | undefined => {
    const reader = answerReader(inputs);
    let result: EmbedResult | undefined;
    for (const f of frames) result = reader(f);
    return result;
  };
  const bad = (frames: unknown[], re: RegExp) =>
    assert.throws(() => read(frames), isCode("unavailable", re));
  const ok = read([{ type: "queued", position: 0 }, vec(0), vec(1), done(7)]);
  assert.deepEqual(ok, { data: [axis(0), axis(0)], usage: { prompt_tokens: 7 } });
  bad([vec(1)], /out of order/);
  bad([vec(0), vec(0)], /out of order/);
  bad([vec(0), vec(1), vec(2)], /out of order/);
  bad([vec(0), vec(1, axis(0, 9))], /two widths/);
  bad([vec(0, axis(0, 8, 2))], /length 1/);
  bad([vec(0, axis(0, 8, NaN))], /length 1/);
  bad([{ type: "embedding", index: 0, embedding: "%%%" }], /no vector/);
  bad([{ type: "embedding", index: 0, embedding: [1, 0] }], /no vector/);
  bad([vec(0), done()], /1 of 2 vectors/);
  bad([vec(0), vec(1), done(1)], /no prompt token count/);
  bad([{ type: "token", text: "a", id: 1 }], /unexpected token/);
  bad([{ type: "error", code: 7 }], /malformed error/);
  assert.throws(
    () => read([{ type: "error", code: "busy", message: "full" }]),
    isCode("busy", /full/),
  );
});
