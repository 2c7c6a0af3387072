import assert from "node:assert/strict";
import { callInfer, createInferStreams, INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
import type { MeshNode } from "./p2p-node.ts";
import { newIdentity, type TestMesh, withMesh } from "../tests/support/p2p-test-kit.ts";
import { eventually } from "../tests/support/poll.ts";
import {
  type InferenceService,
  type InferEvent,
  type InferRequest,
  ServiceError,
} from "./service.ts";
import { readStreamFrames, writeFrame } from "./stream-frames.ts";
import { bytesToHex } from "nostr-tools/utils";

const REQ: InferRequest = { model: "stub", prompt: "Once", params: { max_tokens: 1000 } };

const DONE: InferEvent = {
  type: "done",
  finish_reason: "length",
  usage: { prompt_tokens: 1, completion_tokens: 3 },
  timings: {
    queued_ms: 0,
    prompt_n: 1,
    prompt_ms: 0,
    prompt_per_second: 0,
    predicted_n: 3,
    predicted_ms: 0,
    predicted_per_second: 0,
  },
};

/**
 * A service that streams `tokens` tokens `gapMs` apart (forever when tokens is Infinity) and
 * records the requests it saw and whether their signal was aborted.
 */
function stubService(tokens = 3, gapMs = 0) {
  const seen: { req: InferRequest; signal: AbortSignal; requester?: string }[] = [];
  const service: InferenceService = {
    models: () => Promise.resolve([{ id: "stub", name: "stub" }]),
    async *infer(req, signal, requester) {
      seen.push({ req, signal, requester });
      for (let i = 0; i < tokens && !signal.aborted; i++) {
        // Paced like a model that takes time per token: the scenario, not a synchronisation.
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        yield { type: "token", text: ` t${i}`, id: i };
      }
      if (!signal.aborted) yield DONE;
    },
  };
  return { service, seen };
}

async function collect(events: AsyncIterable<InferEvent>): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const ev of events) out.push(ev);
  return out;
}

async function pair(mesh: TestMesh, service: InferenceService, serving = false) {
  const server = await mesh.node({ serving });
  await serveInfer(server, service);
  const client = await mesh.node();
  return { server, client };
}

function target(node: MeshNode, direct = true) {
  return { peerId: node.peerId, addrs: direct ? node.directAddrs() : [] };
}

const EXPECTED = [" t0", " t1", " t2"];

Deno.test("an infer request streams tokens then done, directly and through the circuit", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService();
    const server = await mesh.node({ serving: true });
    await serveInfer(server, service);
    const clientId = newIdentity();
    const client = await mesh.node({ id: clientId });
    const direct = await collect(
      callInfer(client, target(server), REQ, new AbortController().signal),
    );
    assert.deepEqual(direct.filter((e) => e.type === "token").map((e) => e.text), EXPECTED);
    assert.deepEqual(direct.at(-1), DONE);
    assert.deepEqual(seen[0].req, REQ);
    // The service learns whose request it is (prompt caches are kept per member).
    assert.equal(seen[0].requester, clientId.pubkey);

    await eventually(() => server.circuitAddrs().length > 0, {
      timeoutMs: 5000,
      what: "no circuit reservation",
    });
    const other = await mesh.node();
    const relayed = await collect(
      callInfer(other, target(server, false), REQ, new AbortController().signal),
    );
    assert.deepEqual(relayed, direct);
    const conn = other.libp2p.getConnections().find((c) =>
      c.remotePeer.equals(server.libp2p.peerId)
    );
    assert.ok(conn?.remoteAddr.toString().includes("/p2p-circuit"), String(conn?.remoteAddr));
  });
});

Deno.test("a service error reaches the client as one error event", async () => {
  await withMesh(async (mesh) => {
    const service: InferenceService = {
      models: () => Promise.resolve([]),
      // deno-lint-ignore require-yield
      async *infer() {
        throw new ServiceError("model_not_found", "no model stub-2 here");
      },
    };
    const { server, client } = await pair(mesh, service);
    const events = await collect(callInfer(client, target(server), REQ, AbortSignal.timeout(5000)));
    assert.deepEqual(events, [
      { type: "error", code: "model_not_found", message: "no model stub-2 here" },
    ]);
  });
});

Deno.test("a malformed request is answered with invalid_request", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService();
    const { server, client } = await pair(mesh, service);
    const bad = { model: "stub", prompt: "x", messages: [], params: {} } as InferRequest;
    const events = await collect(callInfer(client, target(server), bad, AbortSignal.timeout(5000)));
    assert.equal(events.length, 1);
    assert.equal(events[0].type === "error" && events[0].code, "invalid_request");
    assert.equal(seen.length, 0);
  });
});

Deno.test("the client aborting or leaving the loop aborts the server's generation", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService(Infinity, 10);
    const { server, client } = await pair(mesh, service);
    const ctrl = new AbortController();
    let tokens = 0;
    for await (const ev of callInfer(client, target(server), REQ, ctrl.signal)) {
      if (ev.type === "token" && ++tokens === 3) ctrl.abort();
    }
    await eventually(() => seen[0]?.signal.aborted, {
      timeoutMs: 2000,
      what: "the server kept generating",
    });

    for await (const _ of callInfer(client, target(server), REQ, new AbortController().signal)) {
      break;
    }
    await eventually(() => seen[1]?.signal.aborted, {
      timeoutMs: 2000,
      what: "breaking out did not cancel",
    });
  });
});

Deno.test("a server that stops mid-stream gives the client unavailable, not a hang", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService(Infinity, 10);
    const { server, client } = await pair(mesh, service);
    let tokens = 0;
    const start = Date.now();
    await assert.rejects(
      (async () => {
        for await (
          const ev of callInfer(client, target(server), REQ, new AbortController().signal)
        ) {
          if (ev.type === "token" && ++tokens === 3) void server.stop();
        }
      })(),
      (err) =>
        err instanceof ServiceError && err.code === "unavailable" && /went away/.test(err.message),
    );
    assert.ok(Date.now() - start < 3000, `the client noticed after ${Date.now() - start} ms`);
    await eventually(() => seen[0].signal.aborted, {
      timeoutMs: 2000,
      what: "the stopped server kept generating",
    });
  });
});

Deno.test("a server falling silent trips the idle timeout; an unreachable one fails fast", async () => {
  await withMesh(async (mesh) => {
    const server = await mesh.node();
    // A peer that answers the stream with one token and then says nothing.
    await server.handle(INFER_PROTOCOL, async (stream) => {
      await writeFrame(stream, { type: "token", text: "a", id: 1 });
    });
    const client = await mesh.node();
    const events: InferEvent[] = [];
    const call = callInfer(client, target(server), REQ, new AbortController().signal, {
      idleMs: 300,
    });
    await assert.rejects(
      (async () => {
        for await (const ev of call) events.push(ev);
      })(),
      (err) => err instanceof ServiceError && err.code === "unavailable",
    );
    assert.equal(events.length, 1);

    const ghost = newIdentity();
    const start = Date.now();
    const unreachable = callInfer(
      client,
      { peerId: ghost.peerId, addrs: ["/ip4/127.0.0.1/tcp/1"] },
      REQ,
      new AbortController().signal,
      { connectMs: 2000 },
    );
    await assert.rejects(collect(unreachable), (err) => err instanceof ServiceError);
    assert.ok(Date.now() - start < 3000);
  });
});

Deno.test("removing the client's member cuts its running generation within 5 s", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService(Infinity, 20);
    const serverId = newIdentity();
    const server = await mesh.node({ id: serverId });
    await serveInfer(server, service);
    const client = await mesh.node();
    let removedAt = 0;
    await assert.rejects(
      (async () => {
        for await (
          const ev of callInfer(client, target(server), REQ, new AbortController().signal)
        ) {
          if (ev.type === "token" && ev.id === 2) {
            removedAt = Date.now();
            server.setMembers(new Set([serverId.pubkey]));
          }
        }
      })(),
      (err) => err instanceof ServiceError && err.code === "unavailable",
    );
    assert.ok(Date.now() - removedAt < 5000);
    await eventually(() => seen[0].signal.aborted, {
      timeoutMs: 5000,
      what: "the server still generates for them",
    });
  });
});

Deno.test("loopback overhead: time to first token and per-token delivery stay in milliseconds", async () => {
  await withMesh(async (mesh) => {
    // Each token carries the moment the service yielded it; one process, so one clock.
    const service: InferenceService = {
      models: () => Promise.resolve([]),
      async *infer(_req, signal) {
        for (let i = 0; i < 200 && !signal.aborted; i++) {
          // A model yields to the event loop now and then; the stream is measured under that load.
          if (i % 20 === 19) await new Promise((r) => setTimeout(r, 1));
          yield { type: "token", text: String(performance.now()), id: i };
        }
        yield DONE;
      },
    };
    const { server, client } = await pair(mesh, service);
    const run = async () => {
      const start = performance.now();
      let ttft = 0;
      const lags: number[] = [];
      for await (const ev of callInfer(client, target(server), REQ, AbortSignal.timeout(5000))) {
        if (ev.type !== "token") continue;
        if (ev.id === 0) ttft = performance.now() - start;
        lags.push(performance.now() - Number(ev.text));
      }
      return { ttft, lags };
    };
    await run(); // connection and ticket exchange happen once per peer, not per request
    const ttfts: number[] = [];
    const lags: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await run();
      ttfts.push(r.ttft);
      lags.push(...r.lags);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];
    console.log(
      `infer over loopback TCP: TTFT median ${median(ttfts).toFixed(2)} ms, ` +
        `token lag median ${median(lags).toFixed(3)} ms, p99 ${p99(lags).toFixed(3)} ms`,
    );
    // Loose bounds (a shared 2-core machine); a Nagle-style or batching delay would be 40 ms+.
    assert.ok(median(ttfts) < 25, `TTFT median ${median(ttfts)} ms`);
    assert.ok(median(lags) < 10, `token lag median ${median(lags)} ms`);
  });
});

Deno.test("a serving process SIGKILLed mid-stream gives the client unavailable, not a hang", async () => {
  await withMesh(async (mesh) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../tests/support/p2p-test-serve.ts", import.meta.url).pathname],
      env: {
        GROVE_TEST_RELAY_SECRET: bytesToHex(mesh.relaySecret),
        GROVE_TEST_RENDEZVOUS: mesh.rendezvous.join(","),
      },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let line = "";
      while (!line.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the serving process ended early: ${line}`);
        line += value;
      }
      const server = JSON.parse(line) as { peerId: string; addrs: string[] };
      const client = await mesh.node();
      let killedAt = 0;
      await assert.rejects(
        (async () => {
          const signal = new AbortController().signal;
          for await (const ev of callInfer(client, server, REQ, signal)) {
            if (ev.type === "token" && ev.id === 2) {
              killedAt = Date.now();
              child.kill("SIGKILL");
            }
          }
        })(),
        (err) => err instanceof ServiceError && err.code === "unavailable",
      );
      assert.ok(killedAt > 0, "no token arrived before the kill");
      assert.ok(Date.now() - killedAt < 3000, `noticed ${Date.now() - killedAt} ms after the kill`);
      await reader.cancel();
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
  });
});

Deno.test("a request queued past the client's idle limit is kept alive, and `queued` is dropped", async () => {
  await withMesh(async (mesh) => {
    // The first token comes after 900 ms (a long queue); the client gives up after 300 ms of
    // silence unless the server's keep-alives (every 100 ms here) reset its limit.
    const { service } = stubService(3, 0);
    const slow: InferenceService = {
      models: service.models,
      load: () => ({ active: 1, queued: 2 }),
      async *infer(req, signal) {
        await new Promise((r) => setTimeout(r, 900)); // the long queue under test
        yield* service.infer(req, signal);
      },
    };
    const server = await mesh.node();
    await serveInfer(server, slow, undefined, { keepAliveMs: 100 });
    const client = await mesh.node();
    const events = await collect(
      callInfer(client, target(server), REQ, AbortSignal.timeout(5000), { idleMs: 300 }),
    );
    assert.deepEqual(events.filter((e) => e.type === "token").map((e) => e.text), EXPECTED);
    assert.deepEqual(events.at(-1), DONE);
    assert.ok(events.every((e) => e.type !== ("queued" as string)), "a keep-alive leaked out");
  });
});

Deno.test("after a request a spare stream waits, ready for the next request", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService();
    const { server, client } = await pair(mesh, service);
    const streams = createInferStreams(client);
    try {
      const signal = AbortSignal.timeout(5000);
      const first = await collect(callInfer(client, target(server), REQ, signal, { streams }));
      assert.deepEqual(first.at(-1), DONE);
      const spare = await eventually(() => streams.take(server.peerId), {
        timeoutMs: 3000,
        what: "no spare opened",
      });
      await writeFrame(spare!, REQ);
      const frames: unknown[] = [];
      for await (const f of readStreamFrames(spare!, 2000)) frames.push(f);
      assert.deepEqual(frames.at(-1), DONE);
      assert.equal(seen.length, 2);
    } finally {
      streams.close();
    }
  });
});

Deno.test("a spare stream that died unnoticed is replaced by a new one, once", async () => {
  await withMesh(async (mesh) => {
    const { service, seen } = stubService();
    const server = await mesh.node();
    // The server drops a stream that brings no request within 100 ms.
    await serveInfer(server, service, undefined, { requestMs: 100 });
    const client = await mesh.node();
    const stale = await client.dialProtocol(
      server.peerId,
      server.directAddrs(),
      INFER_PROTOCOL,
    );
    await eventually(() => stale.status !== "open", {
      timeoutMs: 5000,
      what: () => `the server kept the unused stream (${stale.status})`,
    });
    const streams = { take: () => stale, refill() {}, close() {} };
    const events = await collect(
      callInfer(client, target(server), REQ, AbortSignal.timeout(5000), { streams }),
    );
    assert.deepEqual(events.at(-1), DONE);
    assert.equal(seen.length, 1);
  });
});
