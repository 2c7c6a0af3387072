/**
 * `/grove/infer/1` limits, both ways: a serving node refuses bad requests with a typed error
 * (whatever client sent them), a client refuses to send what no node would take, and a client
 * cuts off a serving node that answers more than it asked for.
 */
import assert from "node:assert/strict";
import { callInfer, INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
import type { MeshNode } from "./p2p-node.ts";
import { type TestMesh, withMesh } from "../tests/support/p2p-test-kit.ts";
import { eventually } from "../tests/support/poll.ts";
import type { InferenceService, InferEvent, InferRequest } from "./service.ts";
import { ServiceError } from "./service.ts";
import {
  MAX_ANSWER_BYTES,
  MAX_EVENT_FRAME_BYTES,
  readStreamFrames,
  writeFrame,
} from "./stream-frames.ts";

const REQ: InferRequest = { model: "stub", prompt: "Once", params: { max_tokens: 5 } };

/** Sends `tokens` tokens of `text` (forever when Infinity), recording each request's signal. */
function stubService(tokens: number, text = " t") {
  const seen: { req: InferRequest; signal: AbortSignal }[] = [];
  let sent = 0;
  const service: InferenceService = {
    models: () => Promise.resolve([]),
    async *infer(req, signal) {
      seen.push({ req, signal });
      for (let i = 0; i < tokens && !signal.aborted; i++) {
        // A model yields to the event loop now and then: the stream is paced like one.
        if (i % 16 === 15) await new Promise((r) => setTimeout(r, 0));
        sent++;
        yield { type: "token", text, id: i };
      }
      if (!signal.aborted) {
        yield {
          type: "done",
          finish_reason: "stop",
          usage: { prompt_tokens: 1, completion_tokens: tokens },
          timings: {
            queued_ms: 0,
            prompt_n: 1,
            prompt_ms: 0,
            prompt_per_second: 0,
            predicted_n: tokens,
            predicted_ms: 0,
            predicted_per_second: 0,
          },
        };
      }
    },
  };
  return { service, seen, sent: () => sent };
}

async function pair(mesh: TestMesh, service: InferenceService) {
  const server = await mesh.node();
  await serveInfer(server, service);
  const client = await mesh.node();
  return { server, client };
}

const target = (node: MeshNode) => ({ peerId: node.peerId, addrs: node.directAddrs() });

/** One raw request frame, as any libp2p client could send it; the frames that come back. */
async function raw(client: MeshNode, server: MeshNode, request: unknown): Promise<unknown[]> {
  const stream = await client.dialProtocol(server.peerId, server.directAddrs(), INFER_PROTOCOL);
  await writeFrame(stream, request);
  const frames: unknown[] = [];
  for await (const f of readStreamFrames(stream, 5000)) frames.push(f);
  return frames;
}

async function collect(events: AsyncIterable<InferEvent>) {
  const out: InferEvent[] = [];
  try {
    for await (const ev of events) out.push(ev);
  } catch (err) {
    return { events: out, error: err };
  }
  return { events: out, error: undefined };
}

Deno.test("a serving node answers bad params with invalid_request naming the field", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService(3);
    const { server, client } = await pair(mesh, service);
    const bad: [Record<string, unknown>, RegExp][] = [
      [
        { top_logprobs: 100000, logprobs: true },
        /params\.top_logprobs must be an integer from 0 to 20; got 100000/,
      ],
      [{ max_tokens: "x" }, /params\.max_tokens must be a non-negative integer; got "x"/],
      [{ max_tokens: -1 }, /params\.max_tokens must be a non-negative integer; got -1/],
      [{ stop: 5 }, /params\.stop must be an array of at most 16 strings/],
      [{ stop: ["x".repeat(1025)] }, /params\.stop must be .* at most 1024 bytes each/],
      [{ temperature: -1 }, /params\.temperature must be a number from 0 to 100/],
      [{ logit_bias: { 1: 500 } }, /params\.logit_bias must be an object of token ids/],
      [{ mirostat: 2 }, /params\.mirostat is not supported by this serving node/],
    ];
    for (const [params, message] of bad) {
      const frames = await raw(client, server, { ...REQ, params });
      assert.equal(frames.length, 1, JSON.stringify(frames));
      const [ev] = frames as { type: string; code: string; message: string }[];
      assert.equal(ev.type, "error");
      assert.equal(ev.code, "invalid_request");
      assert.match(ev.message, message);
    }
    const shape = await raw(client, server, { model: "stub", messages: 5, params: {} });
    assert.match((shape[0] as { message: string }).message, /request\.messages is not/);
    assert.equal(seen.length, 0, "no bad request reached the service");
    // The node is fine afterwards.
    const ok = await raw(client, server, REQ);
    assert.equal((ok.at(-1) as { type: string }).type, "done");
  });
});

Deno.test("a request frame over the limit gets a reason and is not read", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService(3);
    const { server, client } = await pair(mesh, service);
    const stream = await client.dialProtocol(server.peerId, server.directAddrs(), INFER_PROTOCOL);
    // A 9 MiB frame's length prefix and its first bytes: the server needs no more to refuse it.
    const size = 9 * 1024 * 1024;
    stream.send(Uint8Array.of(0x80, 0x80, 0x80 | ((size >> 14) & 0x7f), size >> 21));
    stream.send(new TextEncoder().encode('{"model":"stub","prompt":"'));
    const frames: unknown[] = [];
    try {
      for await (const f of readStreamFrames(stream, 5000)) frames.push(f);
    } catch {
      // the server resets the stream after its answer
    }
    assert.equal(frames.length, 1);
    const ev = frames[0] as { type: string; code: string; message: string };
    assert.equal(ev.code, "invalid_request");
    assert.match(ev.message, /9437184 bytes, over the 8388608-byte limit/);
    assert.equal(seen.length, 0);
  });
});

Deno.test("a client refuses a request no node would take before it dials", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService(3);
    const { server, client } = await pair(mesh, service);
    const signal = AbortSignal.timeout(5000);
    const params = await collect(
      callInfer(client, target(server), { ...REQ, params: { top_logprobs: 100000 } }, signal),
    );
    assert.deepEqual(params.events.map((e) => e.type === "error" && e.code), ["invalid_request"]);
    const huge = { ...REQ, prompt: "a".repeat(9 * 1024 * 1024) };
    const big = await collect(callInfer(client, target(server), huge, signal));
    assert.equal(big.error, undefined);
    const [ev] = big.events;
    assert.ok(ev.type === "error" && ev.code === "invalid_request", JSON.stringify(ev));
    assert.match(ev.message, /9\.0 MiB as a mesh message; serving nodes take at most 8\.0 MiB/);
    assert.equal(seen.length, 0);
    assert.equal(client.libp2p.getConnections(server.libp2p.peerId).length, 0, "it dialed");
  });
});

Deno.test("a serving node sending more tokens than max_tokens is cut off there", async () => {
  await withMesh(async (mesh) => {
    const { service, seen, sent } = stubService(Infinity);
    const { server, client } = await pair(mesh, service);
    const got = await collect(callInfer(client, target(server), REQ, AbortSignal.timeout(5000)));
    assert.equal(got.events.length, 5);
    assert.ok(got.events.every((e) => e.type === "token"));
    assert.ok(got.error instanceof ServiceError && got.error.code === "unavailable");
    assert.match(got.error.message, /more tokens than max_tokens \(5\)/);
    await eventually(() => seen[0]?.signal.aborted, {
      timeoutMs: 5000,
      what: "the serving node was not cancelled",
    });
    console.log(`the serving node had sent ${sent()} tokens when it was cut off`);
  });
});

Deno.test("answer frames over 256 KiB, or over 64 MiB in all, are cut off", async () => {
  await withMesh(async (mesh) => {
    const bigFrame = stubService(1, "x".repeat(MAX_EVENT_FRAME_BYTES));
    const one = await pair(mesh, bigFrame.service);
    const got = await collect(
      callInfer(one.client, target(one.server), REQ, AbortSignal.timeout(5000)),
    );
    assert.equal(got.events.length, 0);
    assert.ok(got.error instanceof ServiceError && got.error.code === "unavailable");
    assert.match(got.error.message, /over the 262144-byte limit/);

    const piece = "y".repeat(200 * 1024);
    const endless = stubService(Infinity, piece);
    const two = await pair(mesh, endless.service);
    const started = performance.now();
    const { max_tokens: _, ...unlimited } = REQ.params;
    let tokens = 0;
    let error: unknown;
    try {
      const call = callInfer(
        two.client,
        target(two.server),
        { ...REQ, params: unlimited },
        AbortSignal.timeout(20_000),
      );
      for await (const ev of call) if (ev.type === "token") tokens++;
    } catch (err) {
      error = err;
    }
    console.log(
      `an endless answer was cut off after ${tokens} tokens of 200 KiB ` +
        `in ${(performance.now() - started).toFixed(0)} ms`,
    );
    assert.ok(error instanceof ServiceError && error.code === "unavailable", String(error));
    assert.match(error.message, /answer ran past 64\.0 MiB/);
    assert.ok(tokens * piece.length <= MAX_ANSWER_BYTES);
    // Not cut early: reading runs ahead of this consumer by what the stream has buffered (up to
    // ~11 MiB seen on a loaded machine), so the tokens seen are well under the cap, not at it.
    assert.ok(tokens * piece.length > MAX_ANSWER_BYTES / 2, `${tokens} tokens`);
    await eventually(() => endless.seen[0]?.signal.aborted, {
      timeoutMs: 5000,
      what: "not cancelled",
    });
  });
});

Deno.test("malformed answers from a serving node are its failure, not the client's crash", async () => {
  await withMesh(async (mesh) => {
    const answers: unknown[][] = [
      [{ type: "token", text: { toString: 1 }, id: 0 }],
      [{ type: "done", finish_reason: "stop" }],
      [{ type: "error", code: 5 }],
      [{ type: "x".repeat(1000) }],
    ];
    const server = await mesh.node();
    let turn = 0;
    await server.handle(INFER_PROTOCOL, async (stream) => {
      for await (const _ of readStreamFrames(stream, 5000)) break;
      for (const frame of answers[turn++]) await writeFrame(stream, frame);
      await stream.close();
    });
    const client = await mesh.node();
    for (
      const why of [
        /malformed token/,
        /malformed done/,
        /malformed error/,
        /unknown message \(x{40}\)/,
      ]
    ) {
      const got = await collect(callInfer(client, target(server), REQ, AbortSignal.timeout(5000)));
      assert.ok(got.error instanceof ServiceError && got.error.code === "unavailable");
      assert.match(got.error.message, why);
    }
  });
});
