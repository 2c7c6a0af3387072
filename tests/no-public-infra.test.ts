/**
 * docs/protocol.md#transports: no public STUN, no public relay, no bootstrap list, no mDNS. A node
 * dials only what the relay advertised or peers reported through it. Checked two ways: the libp2p
 * options the mesh nodes and the rendezvous are built with, and the source and dependencies as a
 * whole.
 */
import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import { libp2pKeyFromNostrSecret, peerIdFromNostrSecret } from "../protocol/mod.ts";
import { meshNodeOptions } from "../mesh/p2p-node.ts";
import { rendezvousOptions } from "../relay/rendezvous.ts";
import { REPO_ROOT } from "./helpers.ts";

const relaySecret = generateSecretKey();
const RENDEZVOUS = `/ip4/127.0.0.1/tcp/7778/p2p/${peerIdFromNostrSecret(relaySecret)}`;
const LOOPBACK_OR_RENDEZVOUS = (a: string) =>
  /^\/ip4\/127\.0\.0\.1\/(tcp|udp)\/\d+(\/quic-v1)?$/.test(a) ||
  a === `${RENDEZVOUS}/p2p-circuit`;

/**
 * Services that discover, probe or relay through peers beyond the mesh. DCUtR (`holePunch`) is
 * allowed: it runs only over the relay's circuit, offering the address the relay observed.
 */
const OUTWARD_SERVICES = /dht|autonat|upnp|bootstrap|mdns|pubsub|gossip|ping|fetch/i;

Deno.test("mesh node options: no discovery, no outward services, only loopback and the relay", async () => {
  const secret = generateSecretKey();
  for (const serving of [true, false]) {
    const options = await meshNodeOptions({
      identity: {
        peerId: peerIdFromNostrSecret(secret),
        pubkey: "0".repeat(64),
        libp2pKey: libp2pKeyFromNostrSecret(secret),
      },
      rendezvous: [RENDEZVOUS],
      relayPubkey: "0".repeat(64),
      meshId: "mesh",
      ticket: () => undefined,
      serving,
      quic: false,
    });
    assert.deepEqual(options.peerDiscovery, [], "no bootstrap list, no mDNS, no discovery");
    const listen = options.addresses?.listen ?? [];
    assert.ok(listen.every(LOOPBACK_OR_RENDEZVOUS), `listen: ${listen}`);
    assert.equal(listen.some((a) => a.includes("p2p-circuit")), serving, "only servers reserve");
    assert.equal(options.addresses?.announce, undefined);
    assert.equal(options.addresses?.appendAnnounce, undefined);
    const services = Object.keys(options.services ?? {});
    assert.ok(!services.some((s) => OUTWARD_SERVICES.test(s)), `services: ${services}`);
    assert.deepEqual(services.sort(), ["holePunch", "identify", "relisten"]);
  }
});

Deno.test("rendezvous options: no discovery, only the relay's own services", async () => {
  const options = await rendezvousOptions(
    {
      host: "127.0.0.1",
      port: 0,
      privateKey: libp2pKeyFromNostrSecret(relaySecret),
      allowPeer: () => false,
      quic: false,
    },
    () => false,
    { info() {}, warn() {}, error() {} },
  );
  assert.deepEqual(options.peerDiscovery, []);
  assert.deepEqual(options.addresses?.listen, ["/ip4/127.0.0.1/tcp/0"]);
  assert.equal(options.addresses?.announce, undefined);
  assert.deepEqual(Object.keys(options.services ?? {}).sort(), ["identify", "relay"]);
});

/** Every .ts file of the project, this one excepted (it names what it looks for). */
async function sourceFiles(dir = REPO_ROOT): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules") continue;
    const path = `${dir}${dir.endsWith("/") ? "" : "/"}${e.name}`;
    if (e.isDirectory) out.push(...await sourceFiles(path));
    else if (e.name.endsWith(".ts") && !path.endsWith("/no-public-infra.test.ts")) out.push(path);
  }
  return out;
}

Deno.test("source and dependencies: no bootstrap, mDNS, STUN or public libp2p hosts", async () => {
  const forbidden: [string, RegExp][] = [
    ["a bootstrap list", /\bbootstrap\s*\(/],
    ["mDNS", /\bmdns\s*\(|@libp2p\/mdns/i],
    ["a STUN server", /stuns?:[a-z0-9./-]/i],
    ["a public libp2p/IPFS host", /(bootstrap\.)?libp2p\.io|ipfs\.io|\/dnsaddr\//i],
    ["WebRTC (STUN by default)", /@libp2p\/webrtc|webRTC(Direct)?\s*\(/],
    ["a DHT or AutoNAT", /@libp2p\/(kad-dht|autonat|upnp-nat)|kadDHT\s*\(|autoNAT\s*\(/],
  ];
  const files = await sourceFiles();
  assert.ok(files.some((f) => f.endsWith("/mesh/p2p-node.ts")), "the scan sees the mesh");
  const hits: string[] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (const [what, re] of forbidden) {
      if (re.test(text)) hits.push(`${file.slice(REPO_ROOT.length)}: ${what}`);
    }
  }
  assert.deepEqual(hits, []);
  const pkg = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}package.json`));
  const deps = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  const outward = deps.filter((d) =>
    /^@libp2p\/(bootstrap|mdns|webrtc|kad-dht|autonat|upnp-nat|pubsub)/.test(d)
  );
  assert.deepEqual(outward, [], "no discovery or NAT-probing libp2p packages are installed");
});
