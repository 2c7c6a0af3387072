import assert from "node:assert/strict";
import { callInfer, INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
import { withMesh } from "../tests/support/p2p-test-kit.ts";
import type { InferenceService, InferEvent, InferRequest } from "./service.ts";
import { ServiceError } from "./service.ts";
import { ALIVE_MS, DEAD_MS, readStreamFrames, writeFrame } from "./stream-frames.ts";
import { watchPeers } from "./peer-watch.ts";
import type { Connection } from "@libp2p/interface";

const REQ: InferRequest = { model: "stub", prompt: "Once", params: { max_tokens: 10 } };

Deno.test("the server beats at least every ALIVE_MS while its engine is busy, before and after the first token", async () => {
  await withMesh(async (mesh) => {
    // An engine that thinks 2.5 s before its first token and 2.5 s before its second: its work
    // is elsewhere (a worker, the GPU), so the event loop is free and the beat must go on.
    const busy: InferenceService = {
      models: () => Promise.resolve([{ id: "stub", name: "stub" }]),
      async *infer() {
        await new Promise((r) => setTimeout(r, 2500)); // the long step under test
        yield { type: "token", text: "a", id: 1 };
        await new Promise((r) => setTimeout(r, 2500)); // the long step under test
        yield { type: "token", text: "b", id: 2 };
        yield {
          type: "done",
          finish_reason: "length",
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
      },
    };
    const server = await mesh.node();
    await serveInfer(server, busy);
    const client = await mesh.node();
    const stream = await client.dialProtocol(server.peerId, server.directAddrs(), INFER_PROTOCOL);
    await writeFrame(stream, REQ);
    const seen: { type: string; at: number }[] = [];
    const started = performance.now();
    for await (const f of readStreamFrames(stream, 10_000)) {
      seen.push({ type: (f as { type: string }).type, at: performance.now() - started });
      if ((f as { type: string }).type === "done") break;
    }
    const types = seen.map((s) => s.type);
    const firstToken = types.indexOf("token");
    assert.ok(types.slice(0, firstToken).every((t) => t === "queued"), types.join(","));
    assert.ok(firstToken >= 2, `no queued beats before the first token: ${types.join(",")}`);
    const between = types.slice(firstToken + 1, types.lastIndexOf("token"));
    assert.ok(between.length >= 2 && between.every((t) => t === "alive"), types.join(","));
    // 1 s between beats at most, plus timer slack on a shared 2-core machine.
    const gaps = seen.slice(1).map((s, i) => s.at - seen[i].at);
    assert.ok(seen[0].at < ALIVE_MS + 300, `first frame after ${seen[0].at} ms`);
    assert.ok(Math.max(...gaps) < ALIVE_MS + 300, `a silence of ${Math.max(...gaps)} ms`);
  });
});

Deno.test("a client gives a silent server DEAD_MS during a request, then unavailable", async () => {
  await withMesh(async (mesh) => {
    const server = await mesh.node();
    // A frozen node: one token, then nothing at all (no keep-alive either), the stream open.
    await server.handle(INFER_PROTOCOL, async (stream) => {
      await writeFrame(stream, { type: "token", text: "a", id: 1 });
      await new Promise((r) => stream.addEventListener("close", r, { once: true }));
    });
    const client = await mesh.node();
    const events: InferEvent[] = [];
    let firstAt = 0;
    const call = callInfer(
      client,
      { peerId: server.peerId, addrs: server.directAddrs() },
      REQ,
      new AbortController().signal,
    );
    await assert.rejects(
      (async () => {
        for await (const ev of call) {
          events.push(ev);
          firstAt = performance.now();
        }
      })(),
      (err) => err instanceof ServiceError && err.code === "unavailable",
    );
    const silence = performance.now() - firstAt;
    assert.equal(events.length, 1);
    assert.ok(silence >= DEAD_MS - 50, `declared dead after only ${silence} ms`);
    assert.ok(silence < DEAD_MS + 1000, `declared dead after ${silence} ms`);
  });
});

/** A fake connection whose muxer answers pings when `answers` says so. */
function fakeConn(peer: string, answers: () => boolean) {
  const conn = {
    status: "open",
    aborted: false,
    remotePeer: { toString: () => peer },
    abort() {
      conn.aborted = true;
    },
    muxer: {
      ping: ({ signal }: { signal?: AbortSignal } = {}) =>
        answers() ? Promise.resolve(1) : new Promise<number>((_, reject) => {
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
    },
  };
  return conn;
}

Deno.test("an idle serving peer that stops answering pings leaves routing, and comes back when it answers", async () => {
  let frozen = true;
  const conns = [fakeConn("A", () => !frozen), fakeConn("B", () => true)];
  const libp2p = { getConnections: () => conns as unknown as Connection[] };
  const failed: string[] = [];
  const ok: string[] = [];
  const watch = watchPeers({
    node: () => ({ libp2p: libp2p as never }),
    peers: () => ["A", "B", "C"],
    router: { markFailed: (p) => failed.push(p), markOk: (p) => ok.push(p) },
    intervalMs: 60_000, // rounds run by hand below
    timeoutMs: 200,
  });
  try {
    const started = performance.now();
    await watch.check();
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(failed, ["A"], "only the silent peer is marked");
    assert.ok(!conns[0].aborted, "its connection stays, to notice it wake up");
    assert.deepEqual(ok, [], "an answering peer that was never marked keeps its latency");
    frozen = false;
    await watch.check();
    assert.deepEqual(ok, ["A"], "an answer takes the peer back");
    assert.deepEqual(failed, ["A"]);
  } finally {
    watch.stop();
  }
});

Deno.test("a real mesh connection is pinged at its muxer, and a live peer stays in routing", async () => {
  await withMesh(async (mesh) => {
    const server = await mesh.node();
    await server.handle(INFER_PROTOCOL, (stream) => stream.close());
    const client = await mesh.node();
    const stream = await client.dialProtocol(server.peerId, server.directAddrs(), INFER_PROTOCOL);
    await stream.close().catch(() => {});
    const conns = client.libp2p.getConnections()
      .filter((c) => c.remotePeer.toString() === server.peerId);
    assert.ok(conns.length > 0);
    const muxer = (conns[0] as unknown as { muxer?: { ping?: unknown } }).muxer;
    assert.equal(typeof muxer?.ping, "function", "the watch relies on yamux's ping");
    const failed: string[] = [];
    const watch = watchPeers({
      node: () => client,
      peers: () => [server.peerId],
      router: { markFailed: (p) => failed.push(p), markOk: () => {} },
      intervalMs: 60_000,
    });
    try {
      await watch.check();
      assert.deepEqual(failed, []);
      assert.ok(conns[0].status === "open");
    } finally {
      watch.stop();
    }
  });
});
