import assert from "node:assert/strict";
import { callInfer, INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
import { withMesh } from "../tests/support/p2p-test-kit.ts";
import type { InferenceService, InferEvent, InferRequest } from "./service.ts";
import { ServiceError } from "./service.ts";
import {
  ALIVE_MS,
  DEAD_MS,
  type LimitClock,
  patientTimer,
  readStreamFrames,
  writeFrame,
} from "./stream-frames.ts";
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

/**
 * A fake connection whose muxer answers pings when `answers` says so. Like yamux, an aborted ping
 * is forgotten, and its late answer would tear the connection down: `pingAborted` records it.
 */
function fakeConn(peer: string, answers: () => boolean) {
  const conn = {
    status: "open",
    aborted: false,
    pingAborted: false,
    remotePeer: { toString: () => peer },
    abort() {
      conn.aborted = true;
    },
    muxer: {
      ping: ({ signal }: { signal?: AbortSignal } = {}) =>
        answers() ? Promise.resolve(1) : new Promise<number>((_, reject) => {
          signal?.addEventListener("abort", () => {
            conn.pingAborted = true;
            reject(signal.reason);
          }, { once: true });
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
  const silenced: string[] = [];
  const watch = watchPeers({
    node: () => ({ libp2p: libp2p as never }),
    peers: () => ["A", "B", "C"],
    router: {
      markFailed: (p) => failed.push(p),
      markOk: (p) => ok.push(p),
      markSilent: (p, on = true) => silenced.push(on ? p : `-${p}`),
    },
    intervalMs: 60_000, // rounds run by hand below
    timeoutMs: 200,
  });
  try {
    const started = performance.now();
    await watch.check();
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(failed, ["A"], "only the silent peer is marked");
    assert.deepEqual(silenced, ["A"], "and marked silent, which mid-stream failover skips");
    assert.ok(!conns[0].aborted, "its connection stays, to notice it wake up");
    assert.ok(!conns[0].pingAborted, "the ping stays out: its late answer must not be unrequested");
    assert.deepEqual(ok, [], "an answering peer that was never marked keeps its latency");
    frozen = false;
    await watch.check();
    assert.deepEqual(ok, ["A"], "an answer takes the peer back");
    assert.deepEqual(failed, ["A"]);
    // Silent again, then its connection goes: no longer silent (a new dial will tell).
    frozen = true;
    await watch.check();
    const a = conns.shift()!;
    await watch.check();
    assert.deepEqual(silenced, ["A", "A", "-A"]);
    conns.unshift(a);
    // Silent with a ping still out: every round renews the mark before that ping's limit ends.
    await watch.check();
    const slow = watch.check();
    await watch.check();
    assert.deepEqual(silenced, ["A", "A", "-A", "A", "A"], "renewed while its ping is out");
    await slow;
    assert.deepEqual(silenced, ["A", "A", "-A", "A", "A", "A"]);
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
      router: { markFailed: (p) => failed.push(p), markOk: () => {}, markSilent: () => {} },
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

/**
 * An event loop on a fake clock: `run(until, lateBy)` fires due timers in order, each `lateBy(at)`
 * ms after it was due (a starved loop), and `arrive(at, fn)` is a read that completes at `at`
 * (a frame reaching this process): it runs as the loop passes `at`, or at a yield to I/O after it.
 */
function fakeLoop() {
  let now = 0;
  let ids = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const reads: { at: number; fn: () => void }[] = [];
  const runReads = () => {
    for (const r of reads.filter((r) => r.at <= now)) {
      reads.splice(reads.indexOf(r), 1);
      r.fn();
    }
  };
  const clock: LimitClock = {
    now: () => now,
    setTimeout: (fn, ms) => (timers.set(++ids, { at: now + ms, fn }), ids),
    clearTimeout: (id) => void timers.delete(id as number),
    yieldToIo: () => Promise.resolve().then(runReads),
  };
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return {
    clock,
    arrive: (at: number, fn: () => void) => reads.push({ at, fn }),
    async run(until: number, lateBy: (at: number) => number = () => 0) {
      while (true) {
        const [id, next] = [...timers].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
        const fireAt = next && Math.max(now, next.at + lateBy(next.at));
        // Reads done before the timer runs reach the reader as they complete.
        const read = reads.filter((r) => r.at < Math.min(fireAt ?? until, until))
          .sort((a, b) => a.at - b.at)[0];
        if (read) {
          now = Math.max(now, read.at);
          runReads();
          continue;
        }
        if (next === undefined || fireAt! > until) break;
        now = fireAt!;
        timers.delete(id!);
        next.fn();
        await settle();
      }
      now = until;
      await settle();
    },
  };
}

Deno.test("patientTimer: on an idle loop a silent peer expires exactly at the limit", async () => {
  const loop = fakeLoop();
  let expiredAt: number | undefined;
  patientTimer(DEAD_MS, () => expiredAt = loop.clock.now(), { clock: loop.clock });
  await loop.run(DEAD_MS - 1);
  assert.equal(expiredAt, undefined);
  await loop.run(DEAD_MS + 100);
  assert.equal(expiredAt, DEAD_MS);
});

Deno.test("patientTimer: a starved loop does not kill a live peer whose beats wait unread", async () => {
  const loop = fakeLoop();
  let heard = 0;
  let expiredAt: number | undefined;
  patientTimer(DEAD_MS, () => expiredAt = loop.clock.now(), {
    since: () => heard,
    clock: loop.clock,
  });
  // The peer beats every second, but this process is starved from 500 ms to 5 s: the beats sent
  // at 1, 2, 3 and 4 s sit in the socket; the limit's timer, due at 3 s, runs at 5 s.
  for (let beat = 1; beat <= 4; beat++) loop.arrive(5000, () => heard = loop.clock.now());
  await loop.run(5500, (at) => at < 5000 ? 5000 - at : 0);
  assert.equal(expiredAt, undefined, "the beats read at the yield keep it alive");
  assert.equal(heard, 5000);

  // Starved again, the timer due at 8 s runs at 9 s, and the beats come through only 0.8 s after
  // it (behind other connections' backlog): the extension by the timer's lateness waits for them.
  loop.arrive(9800, () => heard = loop.clock.now());
  await loop.run(9500, (at) => at === 8000 ? 1000 : 0);
  assert.equal(expiredAt, undefined, "extended by the lateness");
  await loop.run(10_100);
  assert.equal(expiredAt, undefined, "the late beat came through in the extension");
  assert.equal(heard, 9800);

  // Then the peer falls truly silent (its last beat at 9.8 s) on a loop that runs on time.
  await loop.run(20_000);
  assert.equal(expiredAt, 12_800, "dead DEAD_MS after its last beat");
});

Deno.test("patientTimer: a truly silent peer on a starved loop is still found, late by at most the limit", async () => {
  const loop = fakeLoop();
  let expiredAt: number | undefined;
  patientTimer(DEAD_MS, () => expiredAt = loop.clock.now(), { clock: loop.clock });
  // Every timer runs 2 s late: due at 3 s, run at 5 s, extended by 2 s; due at 7 s, run at 9 s,
  // extended by the 1 s left of DEAD_MS; due at 10 s, run at 12 s: dead.
  await loop.run(30_000, () => 2000);
  assert.equal(expiredAt, 12_000);
  assert.ok(expiredAt! <= 2 * DEAD_MS + 3 * 2000, "bounded: twice the limit plus each lateness");
});
