// The relay-facing client against a real in-process relay, plus NIP-11 fail-closed cases against
// a stand-in HTTP server.
import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey } from "nostr-tools/pure";
import { type MeshStatus, type ServeReport } from "../protocol/mod.ts";
import { type RunningRelay, startRelay } from "../relay/mod.ts";
import {
  connectRelay,
  fetchRelayInfo,
  identityOf,
  MeshStartError,
  type RelayClient,
  relayHttpUrl,
  startServeReporter,
} from "../mesh/mod.ts";
import { eventually } from "./support/poll.ts";
import { nip86 as ownerCall } from "./relay-harness.ts";

const owner = identityOf(generateSecretKey());

async function withRelay(
  fn: (relay: RunningRelay, dataDir: string) => Promise<void>,
  meshPort = -1,
) {
  const dataDir = await Deno.makeTempDir({ prefix: "grove-relay-client-test-" });
  const relay = await startRelay({
    host: "127.0.0.1",
    port: 0,
    meshPort,
    quic: false,
    dataDir,
    owner: owner.pubkey,
    open: false,
  });
  try {
    await fn(relay, dataDir);
  } finally {
    await relay.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("relay info: ws(s) URLs map to http(s); a relay without rendezvous fails closed", async () => {
  assert.equal(relayHttpUrl("ws://127.0.0.1:7777/"), "http://127.0.0.1:7777/");
  assert.equal(relayHttpUrl("wss://Relay.Example/grove"), "https://relay.example/grove");
  assert.throws(() => relayHttpUrl("ftp://x"), MeshStartError);
  await withRelay(async (relay) => {
    await assert.rejects(fetchRelayInfo(relay.url), (err: Error) => {
      assert.ok(err instanceof MeshStartError);
      assert.match(err.message, /no rendezvous address; this node refuses to start$/);
      return true;
    });
  });
});

Deno.test("relay info: no mesh object, foreign rendezvous keys, HTTP errors: all fail closed", async () => {
  const relayKey = identityOf(generateSecretKey());
  const stranger = identityOf(generateSecretKey());
  const own = `/ip4/127.0.0.1/tcp/7778/p2p/${relayKey.peerId}`;
  const foreign = `/ip4/127.0.0.1/tcp/7779/p2p/${stranger.peerId}`;
  let doc: unknown;
  let status = 200;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    assert.equal(req.headers.get("accept"), "application/nostr+json");
    return Response.json(doc, { status });
  });
  const url = `ws://127.0.0.1:${server.addr.port}/`;
  const mesh = (rendezvous: string[]) => ({
    id: "m1",
    rendezvous,
    admission_url: `http://127.0.0.1:${server.addr.port}/admission`,
    status_kind: 30621,
  });
  try {
    doc = { name: "plain relay", pubkey: relayKey.pubkey, supported_nips: [1, 11] };
    await assert.rejects(fetchRelayInfo(url), /no mesh object.*; this node refuses to start$/);

    doc = { ...(doc as object), mesh: mesh([foreign, own]) };
    const ok = await fetchRelayInfo(url);
    assert.deepEqual(ok.mesh.rendezvous, [own]);
    assert.equal(ok.relayPubkey, relayKey.pubkey);
    assert.equal(ok.mesh.admission_url, `http://127.0.0.1:${server.addr.port}/admission`);

    doc = { ...(doc as object), mesh: mesh([foreign]) };
    await assert.rejects(fetchRelayInfo(url), /relay's own peer id; this node refuses to start$/);

    status = 503;
    await assert.rejects(fetchRelayInfo(url), /answered HTTP 503; this node refuses to start/);
  } finally {
    await server.shutdown();
  }
  await assert.rejects(fetchRelayInfo(url), (err: Error) => {
    assert.ok(err instanceof MeshStartError);
    assert.match(err.message, /cannot fetch its NIP-11 document from http:\/\/127\.0\.0\.1:\d+\//);
    return true;
  });
});

Deno.test("relay info: a real relay with a rendezvous passes, naming its own peer id", async () => {
  await withRelay(async (relay) => {
    const { mesh, relayPubkey } = await fetchRelayInfo(relay.url);
    assert.equal(relayPubkey, relay.pubkey);
    assert.equal(mesh.id, relay.meshId);
    assert.deepEqual(mesh.rendezvous, relay.rendezvous);
    assert.ok(mesh.rendezvous.length > 0);
  }, 0);
});

function waitFor<T>(
  subscribe: (fn: (v: T) => void) => () => void,
  pred: (v: T) => boolean,
  ms = 4000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`nothing matching within ${ms} ms`));
    }, ms);
    off = subscribe((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      queueMicrotask(() => off());
      resolve(v);
    });
  });
}

const report = (peerId: string, state = "running"): ServeReport => ({
  modelId: "stories260K",
  modelName: "Stories 260K",
  peerId,
  nodeName: "server",
  addrs: ["/ip4/127.0.0.1/tcp/4001"],
  stages: null,
  capacity: { memoryBytes: 1_000_000 },
  load: { active: 1, queued: 0 },
  state,
});

Deno.test("relay client: a member follows the mesh status and member list as reports arrive", async () => {
  await withRelay(async (relay) => {
    const server = identityOf(generateSecretKey());
    await nip86(relay, "allowpubkey", server.pubkey);
    const opts = { url: relay.url, relayPubkey: relay.pubkey };
    const watcher = await connectRelay({ ...opts, identity: owner });
    const serving = await connectRelay({ ...opts, identity: server });
    try {
      assert.equal(watcher.denied(), undefined);
      assert.ok(watcher.members()?.has(owner.pubkey) && watcher.members()?.has(server.pubkey));
      assert.equal(watcher.meshStatus()?.meshId, relay.meshId);

      const reporter = startServeReporter({
        relay: serving,
        identity: server,
        report: () => report(server.peerId),
      });
      const listed = await waitFor<MeshStatus>(
        (fn) => watcher.onMeshStatus(fn),
        (s) => s.serveTargets.some((t) => t.peerId === server.peerId),
      );
      const target = listed.serveTargets.find((t) => t.peerId === server.peerId)!;
      assert.equal(target.pubkey, server.pubkey);
      assert.deepEqual(listed.models, [{ id: "stories260K", name: "Stories 260K" }]);

      await reporter.stop(); // "stopping" withdraws the target
      await waitFor<MeshStatus>(
        (fn) => watcher.onMeshStatus(fn),
        (s) => s.serveTargets.length === 0,
      );

      const newcomer = identityOf(generateSecretKey()).pubkey;
      await nip86(relay, "allowpubkey", newcomer);
      await waitFor<Set<string>>((fn) => watcher.onMembers(fn), (m) => m.has(newcomer));
    } finally {
      await watcher.close();
      await serving.close();
    }
  });
});

Deno.test("relay client: a stranger is denied the subscription; a refused publish throws", async () => {
  await withRelay(async (relay) => {
    const stranger = identityOf(generateSecretKey());
    const client = await connectRelay({
      url: relay.url,
      relayPubkey: relay.pubkey,
      identity: stranger,
    });
    try {
      assert.match(client.denied() ?? "", /^restricted: /);
      assert.equal(client.meshStatus(), undefined);
      const denials: string[] = [];
      client.onDenied((r) => denials.push(r)); // the latest refusal, at once
      assert.equal(denials.length, 1);
      const ev = finalizeEvent(
        { kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: "hi" },
        stranger.secretKey,
      );
      await assert.rejects(client.publish(ev), /^Error: restricted: /);
    } finally {
      await client.close();
    }
  });
});

Deno.test("relay client: after the relay restarts it reconnects, re-authenticates, resubscribes", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "grove-relay-client-test-" });
  const init = { host: "127.0.0.1", meshPort: -1, dataDir, owner: owner.pubkey, open: false };
  let relay = await startRelay({ ...init, port: 0 });
  const port = Number(new URL(relay.localUrl).port);
  let client: RelayClient | undefined;
  try {
    client = await connectRelay({
      url: relay.url,
      relayPubkey: relay.pubkey,
      identity: owner,
      backoffMs: [50, 100],
    });
    const c = client;
    let lists = 0;
    c.onMembers(() => lists++);
    assert.equal(lists, 1);
    await relay.stop();
    await eventually(() => !c.connected(), {
      timeoutMs: 4000,
      what: "the client stayed connected",
    });
    relay = await startRelay({ ...init, port });
    // The stored 13534 again, on the new subscription.
    await eventually(() => lists >= 2, {
      timeoutMs: 4000,
      what: "no member list after reconnecting",
    });
    assert.ok(c.connected());
    const ev = finalizeEvent(
      { kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: "back" },
      owner.secretKey,
    );
    await c.publish(ev); // authenticated again: a member's write is accepted
  } finally {
    await client?.close();
    await relay.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

async function nip86(relay: RunningRelay, method: string, pubkey: string) {
  const owned = await ownerCall(relay, { sk: owner.secretKey, pk: owner.pubkey }, method, [pubkey]);
  assert.equal(owned.status, 200, JSON.stringify(owned.json));
}
