/**
 * Members behind their own NATs (MASQUERADE homes on a simulated internet, tests/support/netns.ts)
 * meet through the relay's circuit, then talk directly after DCUtR hole punching coordinated
 * through that circuit (mesh/hole-punch.ts): the client node's /api/status says `direct` for the
 * serving node, requests keep being answered, and the relay's owner-only /metrics shows its
 * circuits stop carrying their traffic. Where punching cannot work (a home whose NAT picks a
 * random outside port for every connection), requests stay on the circuit.
 */
import assert from "node:assert/strict";
import { nip98Header } from "../protocol/mod.ts";
import { type NetMesh, type NetNode, startNetMesh } from "./support/netns-mesh.ts";
import type { Home } from "./support/netns.ts";
import { newKey } from "./mesh-harness.ts";
import { eventually } from "./support/poll.ts";

const MODEL = "stories260K";
const DCUTR_DEBUG = { DEBUG: "libp2p:dcutr*" };

async function chat(url: string): Promise<string> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: MODEL,
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 16,
      temperature: 0,
    }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text).choices[0].message.content;
}

type Peer = { peerId: string; modelId: string | null; path: string | null };

async function peers(url: string): Promise<Peer[]> {
  const res = await fetch(`${url}/api/status`);
  return (await res.json()).peers as Peer[];
}

interface RelayCounters {
  /** Bytes through circuits, both directions together. */
  relayed: number;
  circuitsOpen: number;
  circuitsOpened: number;
}

/** The relay's /metrics, signed by its owner as the operator's scraper would. */
async function relayCounters(mesh: NetMesh): Promise<RelayCounters> {
  const secret = Uint8Array.from(mesh.owner.nsec.match(/../g)!, (h) => parseInt(h, 16));
  const u = `http://${mesh.relayHost.ip}:7777/metrics`;
  const res = await fetch(`${mesh.relayHttp}/metrics`, {
    headers: { authorization: nip98Header(secret, { url: u, method: "GET" }) },
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  return {
    relayed: value(/^grove_relay_relayed_bytes_total\{from="dialer"\} (\d+)$/m) +
      value(/^grove_relay_relayed_bytes_total\{from="listener"\} (\d+)$/m),
    circuitsOpen: value(/^grove_relay_circuits_open (\d+)$/m),
    circuitsOpened: value(/^grove_relay_circuits_opened_total (\d+)$/m),
  };
}

/** A relay, a serving node in one NAT home and a client node in another; `fn` gets them. */
async function withTwoHomes(
  opts: { randomPortsIn?: "client-home" },
  fn: (t: {
    mesh: NetMesh;
    serving: NetNode;
    client: NetNode;
    servingPeer: string;
    homes: Home[];
  }) => Promise<void>,
) {
  const mesh = await startNetMesh();
  try {
    const { net } = mesh;
    const homeA = await net.home("home-a");
    const homeB = await net.home("home-b");
    if (opts.randomPortsIn) {
      // A NAT that maps every connection to a random outside port (as symmetric NATs do): the
      // punch port the relay-observed address names is never where this home's packets leave from.
      await net.exec(homeB, [
        ..."iptables -w -t nat -R POSTROUTING 1 -o wan -j MASQUERADE --random".split(" "),
      ]);
    }
    const member = newKey();
    await mesh.addMember(member.pubkey);
    const serving = await mesh.serve(await net.natHost(homeA, "serving"), "nat-a", {
      env: DCUTR_DEBUG,
    });
    const client = await mesh.consume(await net.natHost(homeB, "client"), { key: member });
    const servingPeer = await eventually(async () => {
      const list = await peers(client.url).catch(() => []);
      return list.find((p) => p.modelId === MODEL)?.peerId;
    }, { timeoutMs: 60_000, intervalMs: 250, what: "the client node never listed the model" });
    await fn({ mesh, serving, client, servingPeer, homes: [homeA, homeB] });
  } finally {
    await mesh.close();
  }
}

const pathTo = async (client: NetNode, peerId: string) =>
  (await peers(client.url)).find((p) => p.peerId === peerId)?.path;

function logs(serving: NetNode, client: NetNode): string {
  return `client:\n${client.stderr().slice(-2500)}\nserving:\n${serving.stderr().slice(-2500)}`;
}

Deno.test("two NATed members talk directly after hole punching, and the relay stops carrying their requests", async () => {
  await withTwoHomes({}, async ({ mesh, serving, client, servingPeer }) => {
    // The first request meets the serving node through the circuit; DCUtR then punches.
    const first = await chat(client.url);
    assert.ok(first.length > 0);
    const viaCircuit = await relayCounters(mesh);
    assert.ok(viaCircuit.circuitsOpened >= 1, "the first request did not go through a circuit");
    assert.ok(viaCircuit.relayed > 0);

    await eventually(async () => {
      await chat(client.url);
      return await pathTo(client, servingPeer);
    }, {
      until: (p) => p === "direct",
      timeoutMs: 30_000,
      intervalMs: 200,
      what: () => `no direct path after hole punching\n${logs(serving, client)}`,
    });
    // The circuit closes once no request is left on it (mesh/hole-punch.ts).
    await eventually(async () => (await relayCounters(mesh)).circuitsOpen, {
      until: (n) => n === 0,
      timeoutMs: 10_000,
      intervalMs: 200,
      what: "the relay still holds a circuit between the two members",
    });

    const before = await relayCounters(mesh);
    for (let i = 0; i < 10; i++) {
      assert.equal(await chat(client.url), first);
      assert.equal(await pathTo(client, servingPeer), "direct", logs(serving, client));
    }
    const after = await relayCounters(mesh);
    // Ten answers through the circuit would be several KiB (each request and answer frame, the
    // stream's negotiation); with the circuit closed the relay carries none of it. The margin
    // leaves room only for a stray control frame, not for a single request.
    assert.ok(
      after.relayed - before.relayed < 512,
      `the relay carried ${after.relayed - before.relayed} bytes during direct requests`,
    );
    assert.equal(after.circuitsOpened, before.circuitsOpened, "a new circuit was opened");
  });
});

Deno.test("behind a NAT with random outside ports punching fails and requests stay on the circuit", async () => {
  await withTwoHomes(
    { randomPortsIn: "client-home" },
    async ({ mesh, serving, client, servingPeer }) => {
      const first = await chat(client.url);
      assert.ok(first.length > 0);
      // The serving node (the circuit's inbound side) leads DCUtR: 3 attempts, then it gives up.
      await eventually(() => /DCUtR on attempt 3 of 3/.test(serving.stderr()), {
        timeoutMs: 40_000,
        intervalMs: 250,
        what: () => `DCUtR did not give up\n${logs(serving, client)}`,
      });
      const before = await relayCounters(mesh);
      for (let i = 0; i < 5; i++) {
        assert.equal(await chat(client.url), first);
        assert.equal(await pathTo(client, servingPeer), "relayed", logs(serving, client));
      }
      const after = await relayCounters(mesh);
      assert.ok(after.circuitsOpen >= 1);
      // Each answer crossed the relay: at least its text each time.
      assert.ok(
        after.relayed - before.relayed > 5 * first.length,
        `the relay carried only ${after.relayed - before.relayed} bytes for 5 requests`,
      );
    },
  );
});
