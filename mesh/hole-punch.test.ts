import assert from "node:assert/strict";
import { multiaddr } from "@multiformats/multiaddr";
import type { MultiaddrConnection, Upgrader } from "@libp2p/interface";
import {
  dialSignal,
  inCidrs,
  parseCidrs,
  punchAddrs,
  punchTargets,
  responderUpgrader,
} from "./hole-punch.ts";

const SIM = parseCidrs("198.18.0.0/15");

Deno.test("hole punch: only a public or test-public observed address is offered", () => {
  assert.deepEqual(punchAddrs(undefined, 4001, SIM), []);
  assert.deepEqual(punchAddrs("192.168.1.10", 4001, SIM), []);
  assert.deepEqual(punchAddrs("198.18.0.12", 4001, []), [], "benchmark range is not public");
  assert.deepEqual(punchAddrs("198.18.0.12", 4001, SIM).map(String), [
    "/dns4/198.18.0.12/tcp/4001",
  ]);
  assert.deepEqual(punchAddrs("8.8.4.4", 4001, []).map(String), ["/ip4/8.8.4.4/tcp/4001"]);
});

Deno.test("hole punch: test-public names become IPs again; no other name or private IP is dialed", () => {
  const got = punchTargets([
    multiaddr("/dns4/198.18.0.12/tcp/4001"),
    multiaddr("/dns4/example.org/tcp/4001"),
    multiaddr("/dns4/10.0.0.1/tcp/4001"),
    multiaddr("/ip4/192.168.1.2/tcp/4001"),
    multiaddr("/ip4/198.19.0.1/tcp/4001"),
  ], SIM);
  assert.deepEqual(got.map(String), ["/ip4/198.18.0.12/tcp/4001", "/ip4/198.19.0.1/tcp/4001"]);
  assert.deepEqual(punchTargets([multiaddr("/dns4/198.18.0.12/tcp/4001")], []), []);
});

Deno.test("hole punch: GROVE_TEST_PUBLIC_CIDRS parses IPv4 CIDRs and refuses anything else", () => {
  assert.deepEqual(parseCidrs(undefined), []);
  assert.deepEqual(parseCidrs(""), []);
  const two = parseCidrs("198.18.0.0/15, 203.0.113.0/24");
  assert.ok(inCidrs("198.19.255.1", two) && inCidrs("203.0.113.9", two));
  assert.ok(!inCidrs("198.20.0.1", two));
  assert.throws(() => parseCidrs("198.18.0.0"), /not an IPv4 CIDR/);
  assert.throws(() => parseCidrs("::1/128"), /not an IPv4 CIDR/);
});

Deno.test("hole punch: the responder's raw connection is inbound, so its yamux is the server", async () => {
  const seen: string[] = [];
  const upgrader = {
    upgradeOutbound: (c: MultiaddrConnection) => Promise.resolve(seen.push(c.direction)),
    upgradeInbound: () => Promise.resolve("in"),
  } as unknown as Upgrader;
  const maConn = { direction: "outbound" } as MultiaddrConnection;
  await responderUpgrader(upgrader).upgradeOutbound(maConn, {} as never);
  assert.deepEqual(seen, ["inbound"]);
  assert.equal(await responderUpgrader(upgrader).upgradeInbound(maConn, {} as never), "in");
});

Deno.test("hole punch: a punch dial's signal follows DCUtR's only until the dial is over", () => {
  const outer = new AbortController();
  const during = dialSignal(outer.signal, 60_000);
  const after = dialSignal(outer.signal, 60_000);
  after.detach();
  outer.abort(new Error("DCUtR's timeout"));
  assert.equal(during.signal.aborted, true);
  assert.equal(after.signal.aborted, false, "an open punched connection must outlive it");
  during.detach();
});
