// The HTTP face in process (fetch) and, for WebSocket behaviour, on a real Deno.serve.
import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { parseRelayInformation } from "../protocol/mod.ts";
import { DEFAULT_LIMITS } from "./config.ts";
import type { Connection } from "./connection.ts";
import { relayInformation } from "./nip11.ts";
import { createRelayServer, type ServerComponents } from "./server.ts";

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

Deno.test("server: a reader that lets the send queue grow past the bound is disconnected", async () => {
  const big = "x".repeat(64 * 1024);
  const server = createRelayServer(components({
    maxSendBuffer: 1024,
    connect: (send): Connection => ({
      open() {
        for (let i = 0; i < 50; i++) send(["NOTICE", big]);
      },
      receive() {},
      close() {},
      authed: () => undefined,
    }),
  }));
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, server.fetch);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${http.addr.port}/`);
    let received = 0;
    ws.onmessage = () => received++;
    const closed = await new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
    assert.equal(closed.code, 1008);
    assert.ok(received < 50, `the queue was cut short (got ${received} of 50)`);
    assert.equal(server.sockets(), 0);
  } finally {
    server.closeAll();
    await http.shutdown();
  }
});
