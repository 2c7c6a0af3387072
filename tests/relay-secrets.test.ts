// Nothing the relay serves or prints may carry a secret key, a bearer (NIP-98) token or a local
// path. One session uses every feature: NIP-11, writes, a serve report folded into 30621, the
// 13534 list, tickets, refused admissions, NIP-86, live delivery; then everything served and
// the process's stdout and stderr are searched for every secret the session knows.
import assert from "node:assert/strict";
import { nsecEncode } from "nostr-tools/nip19";
import { finalizeEvent } from "nostr-tools/pure";
import { KIND, parseMeshStatus, peerIdFromNostrSecret } from "../protocol/mod.ts";
import { openRelayDatabase } from "../relay/mod.ts";
import type { TestClient } from "./support/relay-test-client.ts";
import {
  admit,
  connectAs,
  type Key,
  newKey,
  nip86,
  note,
  query,
  type RelayHarness,
  relayTest,
  startRelayHarness,
} from "./relay-harness.ts";
import { eventually } from "./support/poll.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

/** Every form a 32-byte secret could leak in. */
function secretForms(sk: Uint8Array): string[] {
  return [hex(sk), hex(sk).toUpperCase(), nsecEncode(sk), b64(sk)];
}

function relaySecret(dataDir: string): Uint8Array {
  const db = openRelayDatabase(dataDir); // WAL: beside the running relay
  try {
    const row = db.prepare("SELECT secret FROM relay_key WHERE id = 1").get();
    assert.ok(row?.secret instanceof Uint8Array, "no relay key in the database");
    return new Uint8Array(row.secret);
  } finally {
    db.close();
  }
}

/** Every message a client has not read yet, until none comes for `quietMs`. */
async function drain(client: TestClient, quietMs = 300): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for (;;) {
    try {
      out.push(await client.next(() => true, quietMs));
    } catch {
      return out;
    }
  }
}

function serveReport(key: Key): ReturnType<typeof finalizeEvent> {
  const content = {
    modelId: "stories260K",
    modelName: "Stories 260K",
    peerId: peerIdFromNostrSecret(key.sk),
    nodeName: "test-node",
    addrs: ["/ip4/127.0.0.1/tcp/4001"],
    stages: null,
    capacity: { memoryBytes: 1 << 30 },
    load: { active: 0, queued: 0 },
    state: "running",
  };
  return finalizeEvent({
    kind: KIND.SERVE_REPORT,
    created_at: Math.floor(Date.now() / 1000),
    tags: [],
    content: JSON.stringify(content),
  }, key.sk);
}

/** Runs the session; returns every text the relay served, labelled by where it came from. */
async function session(h: RelayHarness): Promise<{ served: [string, string][]; auth: string[] }> {
  const served: [string, string][] = [];
  const auth: string[] = [];
  const [member, other] = h.members;
  const record = (where: string, value: unknown) =>
    served.push([where, typeof value === "string" ? value : JSON.stringify(value)]);

  const nip11 = await fetch(h.url.replace(/^ws:/, "http:"), {
    headers: { accept: "application/nostr+json" },
  });
  record("NIP-11", await nip11.text());
  record("GET /", await (await fetch(h.url.replace(/^ws:/, "http:"))).text());

  const owner = await connectAs(h, h.owner);
  const live = await connectAs(h, other);
  const writer = await connectAs(h, member);
  try {
    live.send(["REQ", "live", { since: Math.floor(Date.now() / 1000) - 5 }]);
    for (const ev of [note(member, "hello"), note(member, "{}", [], 0), serveReport(member)]) {
      record("OK", await writer.publish(ev));
    }
    const status = await eventually(async () => {
      const [ev] = await query(owner, { kinds: [KIND.MESH_STATUS] });
      return ev && parseMeshStatus(ev).serveTargets.length > 0 ? ev : undefined;
    }, { timeoutMs: 5000, what: "the serve report never reached kind 30621" });
    record("30621", status);

    for (const key of [member, h.owner]) {
      const res = await admit(h, key);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      record("ticket", res.json);
      auth.push(res.authorization);
    }
    for (
      const res of [await admit(h, newKey()), await admit(h, member, { sign: { method: "GET" } })]
    ) {
      assert.ok(res.status === 401 || res.status === 403, JSON.stringify(res.json));
      record(`admission ${res.status}`, res.json);
      auth.push(res.authorization);
    }
    const added = newKey();
    for (
      const [method, params] of [
        ["supportedmethods", []],
        ["listallowedpubkeys", []],
        ["allowpubkey", [added.pk]],
        ["disallowpubkey", [added.pk]],
      ] as const
    ) {
      const res = await nip86(h, h.owner, method, [...params]);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      record(`NIP-86 ${method}`, res.json);
      auth.push(res.authorization);
    }
    const refused = await nip86(h, member, "listallowedpubkeys");
    assert.equal(refused.status, 403);
    record("NIP-86 403", refused.json);
    auth.push(refused.authorization);

    // The live subscription, up to the 13534 that drops `added` again (published before the
    // disallow was answered); the rest of it is drained below.
    for (let listed = false;;) {
      const m = await live.next(() => true, 5000);
      record("live", m);
      const ev = m[0] === "EVENT" ? m[2] as { kind: number; tags: string[][] } : undefined;
      if (ev?.kind !== KIND.MEMBERSHIP_LIST) continue;
      const lists = ev.tags.some((t) => t[0] === "member" && t[1] === added.pk);
      if (lists) listed = true;
      else if (listed) break;
    }
    // Everything stored, as the owner (a member: restricted kinds included) reads it.
    const all = await query(owner, { limit: 1000 });
    assert.ok(all.some((e) => e.kind === KIND.MESH_STATUS), "the owner read no 30621");
    assert.ok(all.some((e) => e.kind === KIND.MEMBERSHIP_LIST), "the owner read no 13534");
    for (const ev of all) record(`stored kind ${ev.kind}`, ev);
    for (const m of await drain(live)) record("live", m);
    for (const m of [...await drain(owner), ...await drain(writer)]) record("other", m);
  } finally {
    await Promise.all([owner.close(), live.close(), writer.close()]);
  }
  return { served, auth };
}

relayTest(
  "no secret key, bearer token or local path in anything the relay serves or logs",
  async () => {
    const h = await startRelayHarness({ members: 2, prefix: "grove-relay-secrets-" });
    let logs: { stdout: string; stderr: string } | undefined;
    try {
      const relaySk = relaySecret(h.dataDir);
      const { served, auth } = await session(h);
      const dataDir = h.dataDir;
      const out = await h.stop();
      assert.equal(out.code, 0, out.stderr.slice(-2000));
      logs = out;

      const secrets = [relaySk, h.owner.sk, ...h.members.map((m) => m.sk)].flatMap(secretForms);
      const tokens = auth.flatMap((a) => [a, a.replace(/^Nostr /, "")]);
      const forbidden: [string, string][] = [
        ...secrets.map((s): [string, string] => ["a secret key", s]),
        ...tokens.map((t): [string, string] => ["a NIP-98 authorization sent", t]),
        ["the data folder", dataDir],
        ...["/root", "/home", "/tmp", "/Users"].map((p): [string, string] => ["a local path", p]),
      ];
      // The startup banner tells the operator, on their own terminal, where the data lives.
      const banner = `data in ${dataDir}\n`;
      assert.ok(out.stdout.includes(banner), "the banner line the check exempts has changed");
      const texts: [string, string][] = [
        ...served,
        ["stdout", out.stdout.replace(banner, "")],
        ["stderr", out.stderr],
      ];
      assert.ok(served.length > 20, `only ${served.length} texts were collected`);
      const leaks = findLeaks(texts, forbidden);
      // The scan itself works: a planted secret and a planted token are found.
      const planted = findLeaks([["planted", `x${nsecEncode(relaySk)}x ${tokens[0]}`]], forbidden);
      assert.equal(planted.length, 4, planted.join("\n")); // key, header, token, token pattern
      assert.deepEqual(leaks, []);
    } finally {
      await h.stop();
      if (logs === undefined) console.error("the session failed before the relay stopped");
    }
  },
);

function findLeaks(texts: [string, string][], forbidden: [string, string][]): string[] {
  const leaks: string[] = [];
  for (const [where, text] of texts) {
    for (const [what, needle] of forbidden) {
      if (text.includes(needle)) leaks.push(`${where} contains ${what}: …${around(text, needle)}…`);
    }
    if (/Nostr [A-Za-z0-9+/=]{40,}/.test(text)) leaks.push(`${where} contains a Nostr token`);
    if (/bearer\s/i.test(text)) leaks.push(`${where} contains a bearer header`);
  }
  return leaks;
}

function around(text: string, needle: string): string {
  const i = text.indexOf(needle);
  return text.slice(Math.max(0, i - 60), i + needle.length + 20).replace(/\s+/g, " ");
}
