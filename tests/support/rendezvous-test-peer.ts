// Test helper: a member-like libp2p peer that reaches others through the rendezvous' circuit relay.
import { createLibp2p, type Libp2p, type Libp2pOptions } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { FaultTolerance, type PrivateKey } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { eventually } from "./poll.ts";

export const ECHO_PROTOCOL = "/grove-test/echo/1";

export interface TestPeer {
  node: Libp2p;
  peerId: string;
  stop(): Promise<void>;
}

export async function newKey(): Promise<PrivateKey> {
  return await generateKeyPair("secp256k1");
}

export function peerIdOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString();
}

/**
 * A peer listening on loopback TCP; with `relay` it also asks that relay for a circuit
 * reservation. It answers ECHO_PROTOCOL streams by echoing bytes.
 */
export async function startTestPeer(
  opts: { privateKey?: PrivateKey; relay?: string; quic?: boolean } = {},
): Promise<TestPeer> {
  const listen = ["/ip4/127.0.0.1/tcp/0"];
  if (opts.relay) listen.push(`${opts.relay}/p2p-circuit`);
  const transports: NonNullable<Libp2pOptions["transports"]> = [tcp(), circuitRelayTransport()];
  if (opts.quic) transports.push((await import("@chainsafe/libp2p-quic")).quic());
  const node = await createLibp2p({
    privateKey: opts.privateKey ?? await newKey(),
    addresses: { listen },
    // A refused reservation must leave a running node the test can inspect and stop.
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: { identify: identify() },
  });
  await node.handle(ECHO_PROTOCOL, async (stream) => {
    for await (const chunk of stream) stream.send(chunk.subarray());
    await stream.close();
  }, { runOnLimitedConnection: true });
  return { node, peerId: node.peerId.toString(), stop: async () => await node.stop() };
}

/** The peer's circuit address once its reservation is made; throws after `timeoutMs`. */
export async function circuitAddr(peer: TestPeer, timeoutMs = 5000): Promise<string> {
  return await eventually(
    () => peer.node.getMultiaddrs().map(String).find((a) => a.includes("/p2p-circuit")),
    { timeoutMs, what: `peer ${peer.peerId} got no circuit address` },
  );
}

/** Sends `bytes` over ECHO_PROTOCOL to `addr` and returns how many bytes came back. */
export async function echo(from: TestPeer, addr: string, bytes: Uint8Array): Promise<number> {
  const stream = await from.node.dialProtocol(multiaddr(addr), ECHO_PROTOCOL, {
    runOnLimitedConnection: true,
    signal: AbortSignal.timeout(10_000),
  });
  const chunk = 64 * 1024;
  const sending = (async () => {
    for (let i = 0; i < bytes.length; i += chunk) {
      if (!stream.send(bytes.subarray(i, i + chunk))) await stream.onDrain();
    }
    await stream.close();
  })();
  let received = 0;
  for await (const part of stream) received += part.byteLength;
  await sending;
  return received;
}
