// The HTTP face in process (fetch), WebSocket behaviour on the real edge (node:http + ws), and
// the idle and ping rules on fake sockets with a fake clock.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { parseRelayInformation } from "../protocol/mod.ts";
import { DEFAULT_LIMITS } from "./config.ts";
import type { Connection } from "./connection.ts";
import { listenEdge } from "./edge.ts";
import { relayInformation } from "./nip11-document.ts";
import { createRelayServer, type ServerComponents } from "./server.ts";
import type { WsSocket } from "./ws.d.ts";
import { eventually } from "../tests/support/poll.ts";

const PUBKEY = getPublicKey(generateSecretKey());

function components(overrides: Partial<ServerComponents> = {}): ServerComponents {
  return {
    info: () =>
      relayInformation({
        name: "test relay",
        relayPubkey: PUBKEY,
        limits: DEFAULT_LIMITS,
        open: false,
        meshId: "m1",
        rendezvous: ["/ip4/127.0.0.1/tcp/7778/p2p/16Uiu2HAmExample"],
        httpUrl: "http://127.0.0.1:7777/",
      }),
    connect: (send): Connection => ({
      open: () => send(["AUTH", "c"]),
      receive: (data) => send(["ECHO", String(data)]),
      close() {},
      authed: () => undefined,
      subscriptionCount: () => 0,
    }),
    nip86: () => Promise.resolve(Response.json({ result: ["nip86"] })),
    admission: (req) => Promise.resolve(Response.json({ method: req.method })),
    maxSendBuffer: 1 << 20,
    ...overrides,
  };
}

Deno.test("server: NIP-11 on Accept application/nostr+json, with the mesh object", async () => {
  const server = createRelayServer(components());
  const res = await server.fetch(
    new Request("http://127.0.0.1:7777/", { headers: { accept: "application/nostr+json" } }),
  );
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  const info = parseRelayInformation(await res.json());
  assert.deepEqual(info.mesh, {
    id: "m1",
    rendezvous: ["/ip4/127.0.0.1/tcp/7778/p2p/16Uiu2HAmExample"],
    admission_url: "http://127.0.0.1:7777/admission",
    status_kind: 30621,
  });
  assert.equal(info.limitation.max_message_length, DEFAULT_LIMITS.maxMessageLength);
  assert.equal(info.limitation.max_subid_length, 64);
  assert.equal(info.software !== undefined && info.version !== undefined, true);
});

Deno.test("server: POST / routes NIP-86 by Content-Type; /admission goes to admission", async () => {
  const server = createRelayServer(components());
  const rpc = await server.fetch(
    new Request("http://127.0.0.1:7777/", {
      method: "POST",
      headers: { "content-type": "application/nostr+json+rpc" },
      body: "{}",
    }),
  );
  assert.deepEqual(await rpc.json(), { result: ["nip86"] });
  assert.equal(rpc.headers.get("access-control-allow-origin"), "*");
  const wrong = await server.fetch(
    new Request("http://127.0.0.1:7777/", { method: "POST", body: "{}" }),
  );
  assert.equal(wrong.status, 415);
  await wrong.body?.cancel();
  const adm = await server.fetch(
    new Request("http://127.0.0.1:7777/admission", { method: "POST", body: "{}" }),
  );
  assert.deepEqual(await adm.json(), { method: "POST" });
  const missing = await server.fetch(new Request("http://127.0.0.1:7777/nope"));
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "not_found");
});

Deno.test("server: a failed WebSocket upgrade is a 400, not a crash", async () => {
  const server = createRelayServer(components());
  const res = await server.fetch(
    new Request("http://127.0.0.1:7777/", { headers: { upgrade: "websocket" } }),
  );
  assert.equal(res.status, 400);
  await res.body?.cancel();
});

/** The relay's edge in front of `server`, on a free loopback port. */
function edgeFor(server: ReturnType<typeof createRelayServer>) {
  return listenEdge({
    host: "127.0.0.1",
    port: 0,
    limits: { ...DEFAULT_LIMITS },
    trustProxy: false,
    fetch: (req, ip) => server.fetch(req, ip),
    accept: (socket, slot) => server.accept(socket, slot),
    log: { info() {}, warn() {}, error() {} },
  });
}

Deno.test("server: a reader that lets the send queue grow past the bound is disconnected", async () => {
  const big = "x".repeat(64 * 1024);
  const server = createRelayServer(components({
    maxSendBuffer: 1 << 20,
    connect: (send): Connection => ({
      open() {
        // More than loopback's socket buffers take: the rest queues in the process.
        for (let i = 0; i < 400; i++) send(["NOTICE", big]);
      },
      receive() {},
      close() {},
      authed: () => undefined,
      subscriptionCount: () => 0,
    }),
  }));
  const edge = await edgeFor(server);
  // A client that completes the handshake, then never reads.
  const client = connect({ host: "127.0.0.1", port: edge.port });
  try {
    await new Promise((resolve) => client.on("connect", resolve));
    client.write(
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    client.pause();
    await eventually(() => server.sockets() === 0, {
      timeoutMs: 5000,
      what: "the stalled reader was not dropped",
    });
  } finally {
    client.destroy();
    server.closeAll();
    await edge.close();
  }
});

Deno.test("server: the edge answers NIP-11 over node:http and echoes over ws", async () => {
  const server = createRelayServer(components());
  const edge = await edgeFor(server);
  try {
    const res = await fetch(`http://127.0.0.1:${edge.port}/`, {
      headers: { accept: "application/nostr+json" },
    });
    assert.equal(res.headers.get("content-type"), "application/nostr+json");
    assert.equal(parseRelayInformation(await res.json()).name, "test relay");
    const adm = await fetch(`http://127.0.0.1:${edge.port}/admission`, {
      method: "POST",
      body: "{}",
    });
    assert.deepEqual(await adm.json(), { method: "POST" });
    const big = await fetch(`http://127.0.0.1:${edge.port}/admission`, {
      method: "POST",
      body: "x".repeat(DEFAULT_LIMITS.maxHttpBodyBytes + 1),
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    const ws = new WebSocket(`ws://127.0.0.1:${edge.port}/`);
    const inbox: unknown[][] = [];
    const echoed = new Promise<void>((resolve) =>
      ws.onmessage = (e) => {
        inbox.push(JSON.parse(e.data));
        if (inbox.length === 1) ws.send("hello");
        else resolve();
      }
    );
    await echoed;
    assert.deepEqual(inbox, [["AUTH", "c"], ["ECHO", "hello"]]);
    const closed = new Promise((resolve) => ws.onclose = resolve);
    ws.close();
    await closed;
  } finally {
    server.closeAll();
    await edge.close();
  }
});

/** A WsSocket that records what the server does to it. */
function fakeSocket() {
  const handlers: Record<string, (...args: unknown[]) => void> = {};
  const log: string[] = [];
  const socket = {
    readyState: 1,
    bufferedAmount: 0,
    send: (data: string) => log.push(`send ${data}`),
    close: (code?: number) => log.push(`close ${code}`),
    terminate: () => log.push("terminate"),
    ping: () => log.push("ping"),
    on(event: string, fn: (...args: unknown[]) => void) {
      handlers[event] = fn;
      return socket;
    },
  };
  return {
    socket: socket as unknown as WsSocket,
    log,
    emit: (event: string, ...args: unknown[]) => handlers[event]?.(...args),
  };
}

Deno.test("server: an unauthenticated socket with no subscription is closed when silent too long", () => {
  let t = 0;
  const server = createRelayServer(components({
    idleTimeoutSeconds: 60,
    pingIntervalSeconds: 1000,
    clock: () => t,
    connect: (send): Connection => {
      let subs = 0;
      return {
        open: () => send(["AUTH", "c"]),
        receive() {
          subs = 1;
        },
        close() {},
        authed: () => undefined,
        subscriptionCount: () => subs,
      };
    },
  }));
  const quiet = fakeSocket();
  const reading = fakeSocket();
  try {
    server.accept(quiet.socket);
    server.accept(reading.socket);
    reading.emit("message", new TextEncoder().encode('["REQ","s",{}]'), false);
    t = 59_000;
    server.sweep();
    assert.equal(server.sockets(), 2, "not idle yet");
    t = 60_000;
    server.sweep();
    assert.ok(quiet.log.includes("close 1000"), quiet.log.join(", "));
    assert.ok(!reading.log.some((l) => l.startsWith("close")), "a subscriber may stay silent");
    assert.equal(server.sockets(), 1);
  } finally {
    server.closeAll();
  }
});

Deno.test("server: a socket that leaves a ping unanswered is dropped at the next one", () => {
  let t = 0;
  const server = createRelayServer(components({
    idleTimeoutSeconds: 1e6,
    pingIntervalSeconds: 30,
    clock: () => t,
  }));
  const alive = fakeSocket();
  const dead = fakeSocket();
  try {
    server.accept(alive.socket);
    server.accept(dead.socket);
    t = 30_000;
    server.sweep();
    assert.ok(alive.log.includes("ping") && dead.log.includes("ping"));
    alive.emit("pong");
    t = 60_000;
    server.sweep();
    assert.ok(dead.log.includes("terminate"), dead.log.join(", "));
    assert.ok(!alive.log.includes("terminate"));
    assert.equal(server.sockets(), 1);
  } finally {
    server.closeAll();
  }
});
