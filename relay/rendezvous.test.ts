import assert from "node:assert/strict";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import type { MultiaddrConnection } from "@libp2p/interface";
import { CONNECTION_LIMITS, type Logger, STRANGERS_PER_IP } from "../protocol/mod.ts";
import {
  createRendezvousPart,
  type Rendezvous,
  rendezvousGater,
  type RendezvousInit,
  rendezvousOptions,
  startRendezvous,
} from "./rendezvous.ts";
import {
  circuitAddr,
  echo,
  newKey,
  peerIdOf,
  startTestPeer,
  type TestPeer,
} from "../tests/support/rendezvous-test-peer.ts";
import { eventually } from "../tests/support/poll.ts";

const quiet: Logger = { info() {}, warn() {}, error() {} };

/** Runs `fn` with a rendezvous on loopback and stops it and every peer `fn` registers. */
async function withRendezvous(
  init: Partial<RendezvousInit> & Pick<RendezvousInit, "allowPeer">,
  fn: (rv: Rendezvous, tcpAddr: string, track: (p: TestPeer) => TestPeer) => Promise<void>,
) {
  const rv = await startRendezvous({
    host: "127.0.0.1",
    port: 0,
    privateKey: await newKey(),
    log: quiet,
    ...init,
  });
  const peers: TestPeer[] = [];
  try {
    const tcpAddr = rv.addrs.find((a) => a.includes("/tcp/"));
    assert.ok(tcpAddr, `no TCP address among ${rv.addrs.join(", ")}`);
    await fn(rv, tcpAddr, (p) => (peers.push(p), p));
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await rv.stop();
  }
}

function connectedTo(peer: TestPeer, other: string): boolean {
  return peer.node.getConnections().some((c) => c.remotePeer.toString() === other);
}

const MiB = 1024 * 1024;
const HOP = "/libp2p/circuit/relay/0.2.0/hop";

/**
 * Noise lets the dialer finish its side of the handshake before the relay's gater speaks, so a
 * refused dial may resolve; what matters is that no stream gets through and the link drops.
 */
async function assertRefused(peer: TestPeer, addr: string, relayPeerId: string) {
  await assert.rejects(async () => {
    const conn = await peer.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(3000) });
    await conn.newStream(HOP, { signal: AbortSignal.timeout(3000) });
  });
  await eventually(() => !connectedTo(peer, relayPeerId), {
    timeoutMs: 2000,
    what: "the refused peer is still connected",
  });
}

Deno.test("a ticket holder reserves a circuit and another carries 2 MiB through it", async () => {
  const [ka, kb] = [await newKey(), await newKey()];
  const allowed = new Set([peerIdOf(ka), peerIdOf(kb)]);
  await withRendezvous({ allowPeer: (p) => allowed.has(p) }, async (rv, tcpAddr, track) => {
    assert.ok(rv.addrs.every((a) => a.endsWith(`/p2p/${rv.peerId}`)));
    const a = track(await startTestPeer({ privateKey: ka, relay: tcpAddr }));
    const viaRelay = await circuitAddr(a);
    assert.ok(viaRelay.startsWith(`${tcpAddr}/p2p-circuit`), viaRelay);
    const b = track(await startTestPeer({ privateKey: kb }));
    const payload = new Uint8Array(2 * MiB).map((_, i) => i % 251);
    assert.equal(await echo(b, viaRelay, payload), payload.length);
    const toA = b.node.getConnections().filter((c) => c.remotePeer.toString() === a.peerId);
    assert.ok(toA.length > 0 && toA.every((c) => c.remoteAddr.toString().includes("/p2p-circuit")));
    // /metrics' relayed bytes: the payload each way, plus a few hundred bytes of handshakes.
    const m = rv.metrics();
    for (const each of [m.fromDialers, m.fromListeners]) {
      assert.ok(each >= payload.length && each < payload.length + 64 * 1024, `${each}`);
    }
    assert.equal(m.circuitsOpened, 1);
    assert.equal(m.reservations, 1);
  });
});

Deno.test("a peer without a ticket can neither connect nor reserve", async () => {
  await withRendezvous({ allowPeer: () => false }, async (rv, tcpAddr, track) => {
    const stranger = track(await startTestPeer({ relay: tcpAddr }));
    await assert.rejects(circuitAddr(stranger, 1000), /no circuit address/);
    await assertRefused(stranger, tcpAddr, rv.peerId);
  });
});

Deno.test("the reservation itself is gated, not only the connection", async () => {
  const key = await newKey();
  let calls = 0;
  // Admitted when the connection is encrypted, refused from then on: the reservation check.
  const allowPeer = (p: string) => p === peerIdOf(key) && ++calls === 1;
  await withRendezvous({ allowPeer, recheckMs: 60_000 }, async (_rv, tcpAddr, track) => {
    const peer = track(await startTestPeer({ privateKey: key, relay: tcpAddr }));
    await assert.rejects(circuitAddr(peer, 1000), /no circuit address/);
    assert.ok(calls >= 2, `allowPeer was asked ${calls} time(s); the reservation was never gated`);
  });
});

Deno.test("a relayed dial to a peer that lost its ticket is refused", async () => {
  const [ka, kb] = [await newKey(), await newKey()];
  const allowed = new Set([peerIdOf(ka), peerIdOf(kb)]);
  // A slow sweep keeps the revoked peer's reservation alive, so only the gater can refuse.
  const init = { allowPeer: (p: string) => allowed.has(p), recheckMs: 60_000 };
  await withRendezvous(init, async (_rv, tcpAddr, track) => {
    const a = track(await startTestPeer({ privateKey: ka, relay: tcpAddr }));
    const viaRelay = await circuitAddr(a);
    const b = track(await startTestPeer({ privateKey: kb }));
    allowed.delete(a.peerId);
    await assert.rejects(echo(b, viaRelay, new Uint8Array(16)));
    allowed.add(a.peerId);
    assert.equal(await echo(b, viaRelay, new Uint8Array(16)), 16);
  });
});

Deno.test("revoking a peer closes its connections within 5 s", async () => {
  const [ka, kb] = [await newKey(), await newKey()];
  const allowed = new Set([peerIdOf(ka), peerIdOf(kb)]);
  await withRendezvous({ allowPeer: (p) => allowed.has(p) }, async (rv, tcpAddr, track) => {
    const a = track(await startTestPeer({ privateKey: ka, relay: tcpAddr }));
    const b = track(await startTestPeer({ privateKey: kb }));
    assert.equal(await echo(b, await circuitAddr(a), new Uint8Array(16)), 16);
    assert.ok(connectedTo(b, a.peerId));
    const start = Date.now();
    allowed.delete(a.peerId);
    await eventually(() => !connectedTo(a, rv.peerId) && !connectedTo(b, a.peerId), {
      timeoutMs: 5000,
      what: "the revoked peer still has its relay connection or relayed circuit after 5 s",
    });
    assert.ok(Date.now() - start < 5000);
    assert.ok(connectedTo(b, rv.peerId), "the peer that keeps its ticket was disconnected too");
  });
});

Deno.test("the libp2p config reaches nothing beyond the mesh", async () => {
  const init: RendezvousInit = {
    host: "127.0.0.1",
    port: 4001,
    privateKey: await newKey(),
    allowPeer: () => true,
  };
  const opts = await rendezvousOptions(init, () => true, quiet);
  assert.deepEqual(opts.peerDiscovery, []);
  assert.deepEqual(opts.addresses, { listen: ["/ip4/127.0.0.1/tcp/4001"] });
  assert.deepEqual(Object.keys(opts.services ?? {}).sort(), ["identify", "relay"]);
  assert.equal(opts.transports?.length, 1);
  assert.equal(opts.privateKey, init.privateKey);
  // libp2p's defaults (10 handshakes at once, 10 s each) let ten idle sockets lock members out.
  assert.deepEqual(opts.connectionManager, CONNECTION_LIMITS);
  assert.ok(CONNECTION_LIMITS.inboundUpgradeTimeout <= 5000);
  assert.ok(CONNECTION_LIMITS.maxIncomingPendingConnections >= 256);
});

/** The part of a MultiaddrConnection the gater reads: its remote address and close event. */
function fakeConn(addr: string, onClose: (() => void)[] = []) {
  return {
    remoteAddr: multiaddr(addr),
    addEventListener: (_: string, fn: () => void) => void onClose.push(fn),
  } as unknown as MultiaddrConnection;
}

Deno.test("the gater refuses every door to a peer without a ticket", async () => {
  const [ok, bad] = [await newKey(), await newKey()].map((k) => peerIdFromString(peerIdOf(k)));
  const gater = rendezvousGater((p) => p.equals(ok));
  const conn = fakeConn("/ip4/127.0.0.1/tcp/40000");
  assert.equal(await gater.denyInboundEncryptedConnection?.(ok, conn), false);
  assert.equal(await gater.denyInboundEncryptedConnection?.(bad, conn), true);
  assert.equal(await gater.denyInboundRelayReservation?.(ok), false);
  assert.equal(await gater.denyInboundRelayReservation?.(bad), true);
  assert.equal(await gater.denyOutboundRelayedConnection?.(ok, ok), false);
  assert.equal(await gater.denyOutboundRelayedConnection?.(ok, bad), true);
  assert.equal(await gater.denyOutboundRelayedConnection?.(bad, ok), true);
  assert.equal(await gater.denyInboundRelayedConnection?.(ok, bad), true);
  assert.equal(await gater.denyDialPeer?.(bad), true);
});

Deno.test("handshakes per IP are capped until the handshake names a ticket holder", async () => {
  const member = peerIdFromString(peerIdOf(await newKey()));
  const gater = rendezvousGater((p) => p.equals(member));
  const closers: (() => void)[] = [];
  const stranger = (i: number) => fakeConn(`/ip4/127.0.0.2/tcp/${41000 + i}`, closers);
  for (let i = 0; i < STRANGERS_PER_IP; i++) {
    assert.equal(await gater.denyInboundConnection?.(stranger(i)), false, `socket ${i}`);
  }
  assert.equal(await gater.denyInboundConnection?.(stranger(99)), true);
  // Another IP, and a member behind the same NAT once identified, are not held back.
  assert.equal(await gater.denyInboundConnection?.(fakeConn("/ip4/127.0.0.3/tcp/1")), false);
  closers[0](); // one stranger socket closed: its slot is free
  const natMember = fakeConn("/ip4/127.0.0.2/tcp/42000");
  assert.equal(await gater.denyInboundConnection?.(natMember), false);
  assert.equal(await gater.denyInboundEncryptedConnection?.(member, natMember), false);
  assert.equal(await gater.denyInboundConnection?.(fakeConn("/ip4/127.0.0.2/tcp/42001")), false);
  assert.equal(await gater.denyInboundConnection?.(fakeConn("/ip4/127.0.0.2/tcp/42002")), true);
});

Deno.test("the rendezvous listens on QUIC too and gates it like TCP", async () => {
  const key = await newKey();
  const allowPeer = (p: string) => p === peerIdOf(key);
  await withRendezvous({ allowPeer, quic: true }, async (rv, _tcp, track) => {
    const quicAddr = rv.addrs.find((a) => a.includes("/quic-v1/"));
    assert.ok(quicAddr, `no QUIC address among ${rv.addrs.join(", ")}`);
    const member = track(await startTestPeer({ privateKey: key, quic: true }));
    const conn = await member.node.dial(multiaddr(quicAddr));
    assert.ok(conn.remoteAddr.toString().includes("/quic-v1"));
    await conn.newStream(HOP); // the relay's hop protocol answers a ticket holder over QUIC
    const stranger = track(await startTestPeer({ quic: true }));
    await assertRefused(stranger, quicAddr, rv.peerId);
  });
});

Deno.test("rendezvous part: no addresses until started, its node's once started", async () => {
  const privateKey = await newKey();
  const part = createRendezvousPart({
    host: "127.0.0.1",
    port: 0,
    privateKey,
    allowPeer: () => false,
    log: quiet,
  });
  assert.equal(part.name, "rendezvous");
  assert.deepEqual(part.addrs(), []);
  await part.start();
  try {
    const peerId = peerIdOf(privateKey);
    assert.ok(part.addrs().length > 0);
    for (const addr of part.addrs()) assert.ok(addr.endsWith(`/p2p/${peerId}`), addr);
  } finally {
    await part.stop();
  }
});
