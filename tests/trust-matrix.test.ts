// Issue 3's trust matrix against the relay as users run it (`main.ts relay` in its own process):
// who may read the mesh status, forge it, get a ticket, reach the rendezvous, and what removing a
// member takes away. Each row is its own test; all share one relay process and each row uses
// its own member where its actions could disturb another row.
import assert from "node:assert/strict";
import { finalizeEvent } from "nostr-tools/pure";
import {
  KIND,
  libp2pKeyFromNostrSecret,
  nip98Header,
  parseMeshStatus,
  peerIdFromNostrSecret,
  sha256Hex,
  verifyTicket,
} from "../protocol/mod.ts";
import { circuitAddr, startTestPeer, type TestPeer } from "./support/rendezvous-test-peer.ts";
import {
  admit,
  type AdmitOptions,
  connectAs,
  type Key,
  newKey,
  nip86,
  query,
  type RelayHarness,
  relayTest,
  sharedRelay,
} from "./relay-harness.ts";
import { eventually } from "./support/poll.ts";

// reader: rows 1-7; libp2p: row 8; cliRemoved / rpcRemoved: row 9.
const relay = sharedRelay({ members: 4, prefix: "grove-trust-matrix-" });
const member = async (i: 0 | 1 | 2 | 3) => (await relay.get()).members[i];
const stranger = newKey();

const ticketFor = (json: Record<string, unknown>) => json.ticket as Record<string, unknown>;
const errorCode = (json: Record<string, unknown>) =>
  (json.error as { code?: string } | undefined)?.code;

relayTest("trust matrix 1: a member authenticates and reads the relay-signed 30621", async () => {
  const r = await relay.get();
  const client = await connectAs(r, await member(0));
  try {
    const [ev, ...more] = await query(client, { kinds: [KIND.MESH_STATUS] });
    assert.ok(ev, "a member found no kind 30621 event");
    assert.equal(more.length, 0, "30621 is replaceable: one event only");
    const status = parseMeshStatus(ev, { relayPubkey: r.info.pubkey });
    assert.equal(status.meshId, r.info.mesh.id);
    assert.equal(ev.pubkey, r.pubkey);
    assert.ok(ev.tags.some((t) => t[0] === "-"), "30621 is NIP-70 protected");
  } finally {
    await client.close();
  }
});

relayTest(
  "trust matrix 2: a stranger's REQ for 30621 is CLOSED, before and after AUTH",
  async () => {
    const r = await relay.get();
    const client = await connectAs(r);
    try {
      client.send(["REQ", "before", { kinds: [KIND.MESH_STATUS] }]);
      const before = await client.next((m) => m[1] === "before");
      assert.equal(before[0], "CLOSED", JSON.stringify(before));
      assert.match(before[2] as string, /^auth-required:/);
      assert.deepEqual((await client.auth(stranger.sk, r.url)).slice(2), [true, ""]);
      client.send(["REQ", "after", { kinds: [KIND.MESH_STATUS] }]);
      const after = await client.next((m) => m[1] === "after");
      assert.equal(after[0], "CLOSED", JSON.stringify(after));
      assert.match(after[2] as string, /^restricted:/);
      // A kind-less filter is served, but never with the restricted kinds in it.
      const all = await query(client, { limit: 100 });
      assert.ok(all.every((e) => e.kind !== KIND.MESH_STATUS && e.kind !== KIND.MEMBERSHIP_LIST));
    } finally {
      await client.close();
    }
  },
);

relayTest(
  "trust matrix 3: an EVENT of kind 30621 from anyone but the relay is blocked",
  async () => {
    const r = await relay.get();
    const forged = (key: Key) =>
      finalizeEvent({
        kind: KIND.MESH_STATUS,
        created_at: Math.floor(Date.now() / 1000) + 5,
        tags: [["d", "relay-mesh"], ["k", "mesh-status"]],
        content: JSON.stringify({ v: 1, type: "mesh-status", serveTargets: [], models: [] }),
      }, key.sk);
    const anon = await connectAs(r);
    const asStranger = await connectAs(r, stranger);
    const asMember = await connectAs(r, await member(0));
    try {
      for (
        const [who, client, key] of [
          ["unauthenticated stranger", anon, stranger],
          ["authenticated stranger", asStranger, stranger],
          ["member", asMember, await member(0)],
        ] as const
      ) {
        const ev = forged(key);
        const ok = await client.publish(ev);
        assert.equal(ok[2], false, `${who}: ${JSON.stringify(ok)}`);
        assert.match(ok[3] as string, /^blocked:/, who);
      }
      const [status] = await query(asMember, { kinds: [KIND.MESH_STATUS] });
      assert.equal(status.pubkey, r.pubkey, "the stored 30621 is still the relay's");
    } finally {
      await Promise.all([anon.close(), asStranger.close(), asMember.close()]);
    }
  },
);

relayTest("trust matrix 4: a member gets a ticket that verifies against NIP-11", async () => {
  const r = await relay.get();
  const key = await member(0);
  const peerId = peerIdFromNostrSecret(key.sk);
  const res = await admit(r, key);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const now = Math.floor(Date.now() / 1000);
  const check = verifyTicket(ticketFor(res.json), {
    relayPubkey: r.info.pubkey,
    meshId: r.info.mesh.id,
    peerId,
    now,
  });
  assert.ok(check.ok, JSON.stringify(check));
  assert.equal(check.member, key.pk);
  assert.ok(check.expiresAt > now && check.expiresAt <= now + 600 + 1, `${check.expiresAt}`);
  // Never stored or relayed.
  const client = await connectAs(r, key);
  try {
    assert.deepEqual(await query(client, { kinds: [KIND.TICKET] }), []);
  } finally {
    await client.close();
  }
});

relayTest("trust matrix 5: a stranger gets 403 from admission", async () => {
  const res = await admit(await relay.get(), stranger);
  assert.equal(res.status, 403, JSON.stringify(res.json));
  assert.equal(errorCode(res.json), "not_member");
  assert.equal(res.json.ticket, undefined);
});

/** A NIP-98 failure must be 401, and the same request with honest auth must then pass. */
async function assertUnauthorized(
  r: RelayHarness,
  sign: AdmitOptions["sign"],
  reason: RegExp,
) {
  const key = await member(0);
  const bad = await admit(r, key, { sign });
  assert.equal(bad.status, 401, JSON.stringify(bad.json));
  assert.equal(errorCode(bad.json), "unauthorized");
  assert.match((bad.json.error as { message: string }).message, reason);
  assert.equal((await admit(r, key)).status, 200, "the honest request is admitted");
}

const nowS = () => Date.now() / 1000;

relayTest("trust matrix 6a: NIP-98 auth 61 s in the future → 401", async () => {
  // ceil: the event must stay over 60 s ahead however the relay's clock rounds.
  await assertUnauthorized(await relay.get(), { createdAt: Math.ceil(nowS()) + 61 }, /future/);
});

relayTest("trust matrix 6b: NIP-98 auth 61 s old → 401", async () => {
  await assertUnauthorized(await relay.get(), { createdAt: Math.floor(nowS()) - 61 }, /old/);
});

relayTest("trust matrix 6c: a replayed NIP-98 header → 401", async () => {
  const r = await relay.get();
  const key = await member(0);
  const first = await admit(r, key);
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const again = await admit(r, key, { authorization: first.authorization });
  assert.equal(again.status, 401, JSON.stringify(again.json));
  assert.match((again.json.error as { message: string }).message, /replay/);
});

relayTest("trust matrix 6d: NIP-98 auth for another URL → 401", async () => {
  const r = await relay.get();
  await assertUnauthorized(r, { url: r.httpUrl }, /u tag/); // the NIP-86 URL, not admission
  await assertUnauthorized(r, { url: `${r.httpUrl}/elsewhere` }, /u tag/);
});

relayTest("trust matrix 6e: NIP-98 auth for another method → 401", async () => {
  await assertUnauthorized(await relay.get(), { method: "GET" }, /method/);
});

relayTest("trust matrix 6f: NIP-98 auth whose payload is another body → 401", async () => {
  const r = await relay.get();
  const otherPeer = JSON.stringify({ peerId: peerIdFromNostrSecret((await member(1)).sk) });
  await assertUnauthorized(r, { body: otherPeer }, /payload/);
});

relayTest("NIP-98: two honest identical requests in one second are both admitted", async () => {
  // protocol's nip98Header, as nodes and `members --relay` use it: no nonce, so the same URL,
  // method and body in the same second give the same event id, which the replay cache refuses.
  const r = await relay.get();
  const key = await member(0);
  const url = r.info.mesh.admission_url;
  const body = new TextEncoder().encode(JSON.stringify({ peerId: peerIdFromNostrSecret(key.sk) }));
  const at = Math.floor(nowS());
  const statuses = [];
  for (let i = 0; i < 2; i++) {
    const authorization = nip98Header(key.sk, { url, method: "POST", body }, at);
    statuses.push(
      (await admit(r, key, { body: new TextDecoder().decode(body), authorization }))
        .status,
    );
  }
  assert.deepEqual(statuses, [200, 200], "the second honest request was refused as a replay");
});

relayTest("trust matrix 7: a delegated agent (NIP-OA auth tag) → 403", async () => {
  const r = await relay.get();
  const owner = await member(0);
  const url = r.info.mesh.admission_url;
  // The agent signs with its own key and names the member as its owner; neither a stranger
  // agent nor one that is itself a member is admitted this way.
  for (const agent of [newKey(), await member(0)]) {
    const body = JSON.stringify({ peerId: peerIdFromNostrSecret(agent.sk) });
    const ev = finalizeEvent({
      kind: KIND.HTTP_AUTH,
      created_at: Math.floor(nowS()),
      tags: [
        ["u", url],
        ["method", "POST"],
        ["payload", sha256Hex(new TextEncoder().encode(body))],
        ["auth", owner.pk, "kind=27235", "00".repeat(64)],
      ],
      content: "",
    }, agent.sk);
    const authorization = `Nostr ${btoa(JSON.stringify(ev))}`;
    const res = await admit(r, agent, { body, authorization });
    assert.equal(res.status, 403, JSON.stringify(res.json));
    assert.equal(errorCode(res.json), "delegated_agent");
  }
  // The owner's own key, same everything else, is admitted: the auth tag made the difference.
  assert.equal((await admit(r, owner)).status, 200);
});

// libp2p's lock opens a BroadcastChannel whose missing unref() keeps Deno alive (NOTES).
function stubBroadcastChannel() {
  const g = globalThis as { BroadcastChannel?: unknown };
  g.BroadcastChannel = class extends EventTarget {
    postMessage() {}
    close() {}
    unref() {}
    ref() {}
  };
}

function rendezvousAddr(r: RelayHarness): { addr: string; peerId: string } {
  const addr = r.info.mesh.rendezvous.find((a) => a.includes("/tcp/"));
  assert.ok(addr, `no TCP rendezvous among ${r.info.mesh.rendezvous.join(", ")}`);
  return { addr, peerId: addr.split("/p2p/")[1] };
}

const connectedTo = (peer: TestPeer, other: string) =>
  peer.node.getConnections().some((c) => c.remotePeer.toString() === other && c.status === "open");

relayTest("trust matrix 8: only a peer holding a ticket reserves a circuit", async () => {
  stubBroadcastChannel();
  const r = await relay.get();
  const { addr } = rendezvousAddr(r);
  const key = await member(1);
  const peers: TestPeer[] = [];
  try {
    // Membership alone is not enough: this member has asked for no ticket yet.
    for (const k of [stranger, key]) {
      const p = await startTestPeer({ privateKey: libp2pKeyFromNostrSecret(k.sk), relay: addr });
      peers.push(p);
      await assert.rejects(circuitAddr(p, 1500), /no circuit address/);
      await p.stop();
    }
    const res = await admit(r, key);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const p = await startTestPeer({ privateKey: libp2pKeyFromNostrSecret(key.sk), relay: addr });
    peers.push(p);
    assert.equal(p.peerId, peerIdFromNostrSecret(key.sk));
    const circuit = await circuitAddr(p, 5000);
    assert.ok(circuit.startsWith(`${addr}/p2p-circuit`), circuit);
  } finally {
    await Promise.all(peers.map((p) => p.stop().catch(() => {})));
  }
});

async function membershipList(r: RelayHarness, reader: Key): Promise<string[]> {
  const client = await connectAs(r, reader);
  try {
    const [list] = await query(client, { kinds: [KIND.MEMBERSHIP_LIST], authors: [r.pubkey] });
    assert.ok(list, "no kind 13534 membership list");
    return list.tags.filter((t) => t[0] === "member").map((t) => t[1]);
  } finally {
    await client.close();
  }
}

relayTest(
  "trust matrix 9a: `members remove` revokes: 403, gone from 13534, link closed",
  async () => {
    stubBroadcastChannel();
    const r = await relay.get();
    const { addr, peerId: relayPeer } = rendezvousAddr(r);
    const key = await member(2);
    const reader = await member(0);
    assert.ok((await membershipList(r, reader)).includes(key.pk));
    assert.equal((await admit(r, key)).status, 200);
    const peer = await startTestPeer({ privateKey: libp2pKeyFromNostrSecret(key.sk), relay: addr });
    try {
      await circuitAddr(peer, 5000);
      assert.ok(connectedTo(peer, relayPeer));

      const removed = await r.membersCli("remove", key.pk);
      assert.equal(removed.code, 0, removed.stderr);
      const t0 = Date.now();
      await eventually(() => !connectedTo(peer, relayPeer), {
        timeoutMs: 5000,
        what: "the removed member's rendezvous connection is still open 5 s after removal",
      });
      const closedAfter = Date.now() - t0;
      const res = await admit(r, key);
      assert.equal(res.status, 403, JSON.stringify(res.json));
      assert.equal(errorCode(res.json), "not_member");
      await eventually(async () => !(await membershipList(r, reader)).includes(key.pk), {
        timeoutMs: 5000,
        what: "the removed member is still in kind 13534 after 5 s",
      });
      assert.ok(closedAfter < 5000, `closed after ${closedAfter} ms`);
    } finally {
      await peer.stop();
    }
  },
);

relayTest("trust matrix 9b: NIP-86 disallowpubkey from the owner revokes too", async () => {
  const r = await relay.get();
  const key = await member(3);
  const reader = await member(0);
  assert.equal((await admit(r, key)).status, 200);
  const res = await nip86(r, r.owner, "disallowpubkey", [key.pk]);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const denied = await admit(r, key);
  assert.equal(denied.status, 403, JSON.stringify(denied.json));
  await eventually(async () => !(await membershipList(r, reader)).includes(key.pk), {
    timeoutMs: 5000,
    what: "the disallowed member is still in kind 13534 after 5 s",
  });
  // A member may not do the owner's job.
  const byMember = await nip86(r, reader, "disallowpubkey", [(await member(1)).pk]);
  assert.equal(byMember.status, 403, JSON.stringify(byMember.json));
});

relayTest(
  "trust matrix: the relay process stays up through it all, then stops cleanly",
  async () => {
    const r = await relay.get();
    assert.ok(r.alive(), "the relay process died during the trust matrix");
    const out = await r.stop();
    assert.equal(out.code, 0, `the relay did not exit cleanly:\n${out.stderr.slice(-2000)}`);
  },
);
