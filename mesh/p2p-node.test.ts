import assert from "node:assert/strict";
import { Socket } from "node:net";
import { generateSecretKey } from "nostr-tools/pure";
import { CONNECTION_LIMITS, makeTicket } from "../protocol/mod.ts";
import { dialOrder, type MeshNode, meshNodeOptions } from "./p2p-node.ts";
import { leftTheMesh } from "./ticket-exchange.ts";
import {
  connected,
  MESH_ID,
  newIdentity,
  recordingLog,
  type TestMesh,
  withMesh,
} from "../tests/support/p2p-test-kit.ts";
import { eventually } from "../tests/support/poll.ts";
import { readOneFrame, writeFrame } from "./stream-frames.ts";

const ECHO = "/grove-test/echo/1";

/** A handler that answers one frame with `{echo, from}`, recording who it served. */
async function serveEcho(node: MeshNode, served: string[] = []) {
  await node.handle(ECHO, async (stream, remote) => {
    served.push(remote.pubkey);
    const msg = await readOneFrame(stream, 2000);
    await writeFrame(stream, { echo: msg, from: remote.peerId });
    await stream.close();
  });
  return served;
}

async function echoOnce(from: MeshNode, to: MeshNode, addrs: string[]) {
  const stream = await from.dialProtocol(to.peerId, addrs, ECHO, AbortSignal.timeout(8000));
  await writeFrame(stream, "hi");
  const reply = await readOneFrame(stream, 3000);
  await stream.close();
  return { reply, stream };
}

Deno.test("the node's libp2p options reach nothing beyond the mesh", async () => {
  const id = newIdentity();
  const rv = "/ip4/127.0.0.1/tcp/4001/p2p/16Uiu2HAmRelayRelayRelayRelayRelayRelayRelayRelay1";
  const opts = await meshNodeOptions({
    identity: id,
    rendezvous: [rv],
    relayPubkey: "00".repeat(32),
    meshId: MESH_ID,
    ticket: () => undefined,
    serving: true,
  });
  assert.deepEqual(opts.peerDiscovery, []);
  assert.deepEqual(opts.addresses, {
    listen: ["/ip4/127.0.0.1/tcp/0", `${rv}/p2p-circuit`],
  });
  assert.deepEqual(Object.keys(opts.services ?? {}).sort(), ["holePunch", "identify", "relisten"]);
  assert.equal(opts.privateKey, id.libp2pKey);
  assert.deepEqual(opts.connectionManager, CONNECTION_LIMITS);
  assert.equal(typeof opts.connectionGater?.denyInboundConnection, "function");
  const json = JSON.stringify(opts).toLowerCase();
  for (const word of ["bootstrap", "mdns", "stun", "autonat", "dcutr", "kad", "announce"]) {
    assert.ok(!json.includes(word), `the options mention ${word}`);
  }
});

const PEER = "16Uiu2HAmNodeNodeNodeNodeNodeNodeNodeNodeNodeNode";
const OTHER = "16Uiu2HAmOtherOtherOtherOtherOtherOtherOtherOther";
const RELAY = "16Uiu2HAmRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a";

Deno.test("dial order: reported direct addresses, then circuits through the relay", () => {
  const order = dialOrder(PEER, [`/ip4/10.0.0.2/tcp/5/p2p/${PEER}`, "/ip4/10.0.0.3/tcp/6"], [
    `/ip4/127.0.0.1/tcp/9/p2p/${RELAY}`,
  ]);
  assert.deepEqual(order, [
    `/ip4/10.0.0.2/tcp/5/p2p/${PEER}`,
    `/ip4/10.0.0.3/tcp/6/p2p/${PEER}`,
    `/ip4/127.0.0.1/tcp/9/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`,
  ]);
});

Deno.test("dial order: metadata, link-local, other peers' and foreign relays' addresses are never dialed", () => {
  const rendezvous = [`/ip4/127.0.0.1/tcp/9/p2p/${RELAY}`];
  const order = dialOrder(PEER, [
    "/ip4/169.254.169.254/tcp/80",
    `/ip4/169.254.169.254/tcp/80/p2p/${PEER}`,
    `/ip4/127.0.0.1/tcp/4001/p2p/${OTHER}`,
    "/ip6/fe80::1/tcp/4001",
    "/ip6/fd00:ec2::254/tcp/80",
    "/dns4/metadata.google.internal/tcp/80",
    "/ip4/0.0.0.0/tcp/4001",
    "/ip4/10.0.0.3/tcp/6/ws",
    `/ip4/198.51.100.9/tcp/9/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`, // the relay's id, not its address
    `/ip4/127.0.0.1/tcp/9/p2p/${OTHER}/p2p-circuit/p2p/${PEER}`,
    "/ip4/192.168.1.5/tcp/4001",
  ], rendezvous);
  assert.deepEqual(order, [
    `/ip4/192.168.1.5/tcp/4001/p2p/${PEER}`,
    `${rendezvous[0]}/p2p-circuit/p2p/${PEER}`,
  ]);
});

Deno.test("removal compares relay times only: a skewed node clock changes nothing", () => {
  const relayNow = 1_700_000_000;
  const list = { members: new Set(["aa".repeat(32)]), listedAt: relayNow };
  const gone = "bb".repeat(32);
  // Whatever this node's clock says (±10 min), only the ticket's and the list's created_at count.
  assert.match(leftTheMesh(gone, relayNow - 30, list) ?? "", /left the mesh/);
  assert.match(leftTheMesh(gone, relayNow, list) ?? "", /left the mesh/);
  assert.equal(leftTheMesh(gone, relayNow + 1, list), undefined, "a ticket newer than the list");
  assert.equal(leftTheMesh("aa".repeat(32), relayNow - 600, list), undefined);
});

for (const skew of [-120, 120]) {
  Deno.test(`removal with this node's clock ${skew} s off the relay's: the list's time decides`, async () => {
    await withMesh(async (mesh) => {
      const relayNow = () => Math.floor(Date.now() / 1000);
      const ida = newIdentity();
      const a = await mesh.node({ id: ida, now: () => relayNow() + skew });
      await serveEcho(a);
      const b = await mesh.node();
      await echoOnce(b, a, a.directAddrs());
      // The relay removed b after issuing its ticket: cut, though a's clock is behind the relay's.
      a.setMembers(new Set([ida.pubkey]), relayNow());
      await eventually(() => !connected(a, b), {
        timeoutMs: 5000,
        what: "the removed member stays connected",
      });
      await assert.rejects(echoOnce(b, a, a.directAddrs()));
      // c was added after that list was made: its ticket is newer, so it is served, though a's
      // clock is ahead of the relay's.
      const listedAt = relayNow() - 1;
      a.setMembers(new Set([ida.pubkey]), listedAt);
      const c = await mesh.node();
      const { reply } = await echoOnce(c, a, a.directAddrs());
      assert.deepEqual(reply, { echo: "hi", from: c.peerId });
    });
  });
}

Deno.test("members exchange tickets and talk directly; the peer id is the Nostr key", async () => {
  await withMesh(async (mesh) => {
    const [ida, idb] = [newIdentity(), newIdentity()];
    const a = await mesh.node({ id: ida });
    const b = await mesh.node({ id: idb });
    assert.equal(a.peerId, ida.peerId);
    const served = await serveEcho(a);
    const { reply } = await echoOnce(b, a, a.directAddrs());
    assert.deepEqual(reply, { echo: "hi", from: idb.peerId });
    assert.deepEqual(served, [idb.pubkey]);
    const conn = b.libp2p.getConnections().find((c) => c.remotePeer.toString() === a.peerId);
    assert.ok(conn && !conn.remoteAddr.toString().includes("/p2p-circuit"));
  });
});

// protocol/noise-one-write.ts: noise 17 hands each message down as its 2-byte length and its
// ciphertext, which @libp2p/tcp writes one by one. Every noise message must leave in one write,
// so no socket of either node (nor the rendezvous) ever writes 2 bytes alone.
Deno.test("each encrypted message leaves in one socket write, its length prefix included", async () => {
  const sizes: number[] = [];
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (chunk instanceof Uint8Array) sizes.push(chunk.byteLength);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  try {
    await withMesh(async (mesh) => {
      const a = await mesh.node();
      const b = await mesh.node();
      await serveEcho(a);
      for (let i = 0; i < 5; i++) {
        const { reply } = await echoOnce(b, a, a.directAddrs());
        assert.deepEqual(reply, { echo: "hi", from: b.peerId });
      }
    });
  } finally {
    Socket.prototype.write = write;
  }
  assert.ok(sizes.length > 20, `only ${sizes.length} socket writes were seen`);
  assert.deepEqual(sizes.filter((n) => n === 2), [], "a noise length prefix went alone");
});

Deno.test("a serving node is reached through the relay's circuit when it has no direct address", async () => {
  await withMesh(async (mesh) => {
    const a = await mesh.node({ serving: true });
    await eventually(() => a.circuitAddrs().length > 0, {
      timeoutMs: 5000,
      what: "no circuit reservation",
    });
    const b = await mesh.node();
    await serveEcho(a);
    const { reply } = await echoOnce(b, a, []);
    assert.deepEqual(reply, { echo: "hi", from: b.peerId });
    const conns = b.libp2p.getConnections().filter((c) => c.remotePeer.toString() === a.peerId);
    assert.ok(conns.length > 0 && conns.every((c) => c.remoteAddr.toString().includes("circuit")));
  });
});

/** `bad` dials `good`; the connection must close and no stream may reach the handler. */
async function assertShutOut(
  mesh: TestMesh,
  ticket: (m: TestMesh) => ReturnType<TestMesh["ticketFor"]>,
  why: RegExp,
) {
  const log = recordingLog();
  const good = await mesh.node({ log });
  const served = await serveEcho(good);
  const badId = newIdentity();
  const badTicket = ticket(mesh);
  const bad = await mesh.node({ id: badId, ticket: () => badTicket, log: recordingLog() });
  await assert.rejects(echoOnce(bad, good, good.directAddrs()));
  await eventually(() => !connected(good, bad), {
    timeoutMs: 5000,
    what: "the bad peer is still connected",
  });
  assert.deepEqual(served, []);
  assert.ok(log.lines.some((l) => why.test(l)), `no log line matches ${why}: ${log.lines}`);
}

Deno.test("a peer with another mesh's ticket is disconnected and served nothing", async () => {
  await withMesh((mesh) =>
    assertShutOut(mesh, (m) => m.ticketFor(newIdentity(), { meshId: "other" }), /other/)
  );
});

Deno.test("a peer with an expired ticket is disconnected and served nothing", async () => {
  await withMesh(async (mesh) => {
    const id = newIdentity();
    const log = recordingLog();
    const good = await mesh.node({ log });
    const served = await serveEcho(good);
    const bad = await mesh.node({ id, ticket: () => mesh.ticketFor(id, { expiresIn: -10 }) });
    await assert.rejects(echoOnce(bad, good, good.directAddrs()));
    await eventually(() => !connected(good, bad), {
      timeoutMs: 5000,
      what: "the expired peer is still connected",
    });
    assert.deepEqual(served, []);
    assert.ok(log.lines.some((l) => /expired/.test(l)), log.lines.join("\n"));
  });
});

Deno.test("a peer showing someone else's ticket, or one from another relay, is shut out", async () => {
  await withMesh(async (mesh) => {
    const other = newIdentity();
    await assertShutOut(mesh, (m) => m.ticketFor(other), /not .*16Uiu2|is for peer/);
    const forged = (id = newIdentity()) =>
      makeTicket(generateSecretKey(), {
        member: id.pubkey,
        peerId: id.peerId,
        meshId: MESH_ID,
        now: Math.floor(Date.now() / 1000),
        expiresAt: Math.floor(Date.now() / 1000) + 60,
      });
    await assertShutOut(mesh, () => forged(), /not signed by this relay|is for peer/);
  });
});

Deno.test("setMembers without a peer cuts its open stream within 5 s", async () => {
  await withMesh(async (mesh) => {
    const ida = newIdentity();
    const a = await mesh.node({ id: ida });
    const b = await mesh.node();
    let handlerSawClose = false;
    await a.handle(ECHO, async (stream) => {
      stream.addEventListener("close", () => handlerSawClose = true);
      while (stream.status === "open") {
        await writeFrame(stream, { tick: Date.now() }).catch(() => {});
        // Paced: a live stream that carries a frame now and then, not a flood.
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    const stream = await b.dialProtocol(a.peerId, a.directAddrs(), ECHO);
    let read = 0;
    const reading = (async () => {
      try {
        for await (const _ of stream) read++;
      } catch { /* a reset ends the loop too */ }
      return read;
    })();
    await eventually(() => read > 0, { timeoutMs: 5000, what: "the stream carried nothing" });
    const start = Date.now();
    a.setMembers(new Set([ida.pubkey]));
    const ticks = await reading;
    assert.ok(Date.now() - start < 5000, `the stream ran ${Date.now() - start} ms after removal`);
    assert.ok(ticks > 0, "the stream never carried anything before the removal");
    await eventually(() => handlerSawClose && !connected(a, b), {
      timeoutMs: 5000,
      what: "the removed peer stays",
    });
    // Redialing with a still-valid ticket does not get the removed member back in.
    await assert.rejects(echoOnce(b, a, a.directAddrs()));
  });
});

Deno.test("a serving node that loses its circuit reservation asks the relay again", async () => {
  await withMesh(async (mesh) => {
    const a = await mesh.node({ serving: true, sweepMs: 100, reserveRetryMs: 300 });
    await eventually(() => a.circuitAddrs().length > 0, {
      timeoutMs: 5000,
      what: "no circuit reservation",
    });
    // Without a ticket the rendezvous drops the node (its sweep runs every second).
    mesh.allowed.delete(a.peerId);
    await eventually(() => a.circuitAddrs().length === 0, {
      timeoutMs: 5000,
      what: "the reservation stayed",
    });
    mesh.allowed.add(a.peerId);
    await eventually(() => a.circuitAddrs().length > 0, {
      timeoutMs: 5000,
      what: "no new reservation",
    });
    const b = await mesh.node();
    await serveEcho(a);
    const { reply } = await echoOnce(b, a, []);
    assert.deepEqual(reply, { echo: "hi", from: b.peerId });
  });
});

Deno.test("a renewed ticket is shown again on open connections; an unrenewed one ends them", async () => {
  await withMesh(async (mesh) => {
    const a = await mesh.node({ sweepMs: 100 });
    await serveEcho(a);
    const [idr, ids] = [newIdentity(), newIdentity()];
    let renewing = mesh.ticketFor(idr, { expiresIn: 2 });
    const renewer = await mesh.node({ id: idr, ticket: () => renewing, sweepMs: 100 });
    const short = mesh.ticketFor(ids, { expiresIn: 2 });
    const stale = await mesh.node({ id: ids, ticket: () => short, sweepMs: 100 });
    await echoOnce(renewer, a, a.directAddrs());
    await echoOnce(stale, a, a.directAddrs());
    renewing = mesh.ticketFor(idr, { expiresIn: 300 });
    await eventually(() => !connected(a, stale), {
      timeoutMs: 4000,
      what: "a peer with an expired ticket stays",
    });
    assert.ok(connected(a, renewer), "the peer that renewed its ticket was dropped");
    const { reply } = await echoOnce(renewer, a, []);
    assert.deepEqual(reply, { echo: "hi", from: idr.peerId });
  });
});
