// startRelay in process: its real edge (node:http + ws) on port 0 and real WebSockets, no
// rendezvous.
import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { SimplePool } from "nostr-tools/pool";
import { nip98Header, type NostrEvent, parseRelayInformation } from "../protocol/mod.ts";
import { type RunningRelay, startRelay } from "./relay.ts";
import { connectTestClient } from "../tests/support/relay-test-client.ts";

const ownerSk = generateSecretKey();
const OWNER = getPublicKey(ownerSk);

async function withRelay(fn: (relay: RunningRelay) => Promise<void>, open = false) {
  const dataDir = await Deno.makeTempDir({ prefix: "grove-relay-test-" });
  const relay = await startRelay({
    host: "127.0.0.1",
    port: 0,
    meshPort: -1,
    dataDir,
    owner: OWNER,
    open,
  });
  try {
    await fn(relay);
  } finally {
    await relay.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

const note = (sk: Uint8Array, content: string, tags: string[][] = []) =>
  finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags, content }, sk);

Deno.test("relay: NIP-11 document with limitation and mesh, CORS, and a text page", async () => {
  await withRelay(async (relay) => {
    const res = await fetch(relay.httpUrl, { headers: { accept: "application/nostr+json" } });
    assert.equal(res.headers.get("content-type"), "application/nostr+json");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const doc = await res.json();
    const info = parseRelayInformation(doc);
    assert.equal(info.pubkey, relay.pubkey);
    assert.deepEqual(info.supported_nips, [1, 9, 11, 40, 42, 43, 70, 86, 98]);
    // Anonymous REQs for ordinary kinds are answered: only member-only kinds need AUTH.
    assert.equal(info.limitation.auth_required, false);
    assert.equal(info.limitation.restricted_writes, true);
    for (
      const key of [
        "max_message_length",
        "max_subscriptions",
        "max_filters",
        "max_limit",
        "max_filter_bytes",
        "auths_per_minute",
        "max_connections",
        "max_unauthenticated_connections_per_ip",
        "idle_timeout_seconds",
        "http_header_timeout_seconds",
      ]
    ) {
      assert.ok(typeof info.limitation[key] === "number" && info.limitation[key] > 0, key);
    }
    assert.deepEqual(info.mesh, {
      id: relay.meshId,
      rendezvous: [],
      admission_url: `${relay.httpUrl}/admission`,
      status_kind: 30621,
    });
    assert.match(relay.meshId, /^[0-9a-f]{32}$/);
    assert.match(relay.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

    const page = await fetch(relay.httpUrl);
    assert.match(await page.text(), /Grove relay/);
    const preflight = await fetch(relay.httpUrl, { method: "OPTIONS" });
    await preflight.body?.cancel();
    assert.equal(preflight.status, 204);
  });
});

Deno.test("relay: a member publishes after AUTH; another client gets it live", async () => {
  await withRelay(async (relay) => {
    const reader = await connectTestClient(relay.url);
    const writer = await connectTestClient(relay.url);
    try {
      reader.send(["REQ", "live", { kinds: [1] }]);
      await reader.next((m) => m[0] === "EOSE");
      const ev = note(ownerSk, "hello grove");
      assert.match((await writer.publish(ev))[3] as string, /^auth-required: /);
      assert.deepEqual((await writer.auth(ownerSk, relay.url)).slice(2), [true, ""]);
      assert.deepEqual(await writer.publish(ev), ["OK", ev.id, true, ""]);
      const live = await reader.next((m) => m[0] === "EVENT");
      assert.deepEqual(live, ["EVENT", "live", JSON.parse(JSON.stringify(ev))]);
      // A malformed frame on the socket: a NOTICE, and the socket still works.
      writer.send("{oops");
      assert.equal((await writer.next((m) => m[0] === "NOTICE"))[0], "NOTICE");
      writer.send(["REQ", "again", { ids: [ev.id] }]);
      assert.equal(((await writer.next((m) => m[0] === "EVENT"))[2] as NostrEvent).id, ev.id);
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});

Deno.test("relay: members read the mesh status and the NIP-43 list; strangers get CLOSED", async () => {
  await withRelay(async (relay) => {
    const member = await connectTestClient(relay.url);
    const stranger = await connectTestClient(relay.url);
    try {
      stranger.send(["REQ", "mesh", { kinds: [30621] }]);
      const closed = await stranger.next((m) => m[0] === "CLOSED");
      assert.match(closed[2] as string, /^auth-required: /);
      const forged = finalizeEvent({
        kind: 30621,
        created_at: Math.floor(Date.now() / 1000),
        tags: [["d", "relay-mesh"]],
        content: "{}",
      }, generateSecretKey());
      assert.match((await stranger.publish(forged))[3] as string, /^blocked: /);

      await member.auth(ownerSk, relay.url);
      member.send(["REQ", "mesh", { kinds: [30621, 13534] }]);
      const stored: NostrEvent[] = [];
      for (let m = await member.next(); m[0] !== "EOSE"; m = await member.next()) {
        if (m[0] === "EVENT") stored.push(m[2] as NostrEvent);
      }
      const status = stored.find((e) => e.kind === 30621);
      assert.equal(status?.pubkey, relay.pubkey);
      assert.equal(JSON.parse(status!.content).meshId, relay.meshId);
      const list = stored.find((e) => e.kind === 13534);
      assert.deepEqual(list?.tags, [["-"], ["member", OWNER]]);

      // NIP-86 allowpubkey by the owner: a new 13534 arrives live.
      const newcomer = getPublicKey(generateSecretKey());
      const body = new TextEncoder().encode(
        JSON.stringify({ method: "allowpubkey", params: [newcomer] }),
      );
      const res = await fetch(relay.httpUrl, {
        method: "POST",
        headers: {
          "content-type": "application/nostr+json+rpc",
          authorization: nip98Header(ownerSk, { url: relay.httpUrl, method: "POST", body }),
        },
        body,
      });
      assert.equal(res.status, 200, await res.clone().text());
      await res.body?.cancel();
      const updated = (await member.next((m) => m[0] === "EVENT" && kindOf(m) === 13534))[2];
      assert.ok((updated as NostrEvent).tags.some((t) => t[0] === "member" && t[1] === newcomer));
    } finally {
      await member.close();
      await stranger.close();
    }
  });
});

Deno.test("relay: nostr-tools SimplePool publishes and subscribes as a member, unchanged", async () => {
  await withRelay(async (relay) => {
    const sign = (e: Parameters<typeof finalizeEvent>[0]) =>
      Promise.resolve(finalizeEvent(e, ownerSk));
    const pool = new SimplePool();
    pool.automaticallyAuth = () => sign; // answers the AUTH challenge on connect
    try {
      const ev = note(ownerSk, "from the pool");
      const [result] = await Promise.allSettled(
        pool.publish([relay.url], ev, { onauth: sign }),
      );
      assert.equal(result.status, "fulfilled", JSON.stringify(result));
      const got = await new Promise<NostrEvent[]>((resolve) => {
        const seen: NostrEvent[] = [];
        const sub = pool.subscribe([relay.url], { ids: [ev.id] }, {
          onevent: (e) => seen.push(e),
          oneose: () => {
            sub.close();
            resolve(seen);
          },
        });
      });
      assert.deepEqual(got.map((e) => e.id), [ev.id]);
    } finally {
      pool.destroy();
    }
  });
});

Deno.test("relay: stop() closes open sockets", async () => {
  let client: Awaited<ReturnType<typeof connectTestClient>> | undefined;
  await withRelay(async (relay) => {
    client = await connectTestClient(relay.url);
  });
  const ev = await client!.closed;
  assert.equal(ev.code, 1001);
});

Deno.test("relay: a port already taken fails the start; the parts started before it stop", async () => {
  await withRelay(async (relay) => {
    const dataDir = await Deno.makeTempDir({ prefix: "grove-relay-test-" });
    try {
      const port = Number(new URL(relay.httpUrl).port);
      const second = startRelay({ host: "127.0.0.1", port, meshPort: -1, dataDir, open: false });
      await assert.rejects(second, /could not listen on 127\.0\.0\.1:\d+/);
      // The database is the first part, so stopped last: SQLite removes the WAL file when its
      // last connection closes.
      const files = [];
      for await (const f of Deno.readDir(dataDir)) files.push(f.name);
      assert.deepEqual(files, ["relay.sqlite"]);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  });
});

function kindOf(m: unknown[]): number | undefined {
  return (m[2] as NostrEvent | undefined)?.kind;
}
