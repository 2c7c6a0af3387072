import assert from "node:assert/strict";
import type { MultiaddrConnection } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { createStrangerGate, ipKey } from "./libp2p-limits.ts";

function conn(addr: string, closers: (() => void)[] = []) {
  return {
    remoteAddr: multiaddr(addr),
    addEventListener: (_: string, fn: () => void) => void closers.push(fn),
  } as unknown as MultiaddrConnection;
}

Deno.test("stranger gate: a cap per IP, freed by release or close, other IPs untouched", () => {
  const refused: string[] = [];
  const gate = createStrangerGate({ perIp: 2, onRefused: (ip) => refused.push(ip) });
  const closers: (() => void)[] = [];
  assert.equal(gate.deny(conn("/ip4/10.0.0.2/tcp/1", closers)), false);
  assert.equal(gate.deny(conn("/ip4/10.0.0.2/tcp/2", closers)), false);
  assert.equal(gate.deny(conn("/ip4/10.0.0.2/tcp/3")), true);
  assert.equal(gate.deny(conn("/ip4/10.0.0.2/tcp/4")), true);
  assert.deepEqual(refused, ["10.0.0.2"], "one refusal reported per quiet period");
  assert.equal(gate.deny(conn("/ip4/10.0.0.3/tcp/1")), false);
  assert.equal(gate.pending(multiaddr("/ip4/10.0.0.2/tcp/9")), 2);

  gate.release(multiaddr("/ip4/10.0.0.2/tcp/1")); // its ticket checked out
  closers[0](); // and a close after that frees nothing twice
  assert.equal(gate.pending(multiaddr("/ip4/10.0.0.2/tcp/9")), 1);
  closers[1]();
  assert.equal(gate.pending(multiaddr("/ip4/10.0.0.2/tcp/9")), 0);
  assert.equal(gate.deny(conn("/ip4/10.0.0.2/tcp/5")), false);
});

Deno.test("stranger gate: circuits are not counted; an IPv6 /64 counts as one IP", () => {
  const gate = createStrangerGate({ perIp: 1 });
  const circuit = "/ip4/127.0.0.1/tcp/9/p2p/16Uiu2HAmRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a" +
    "/p2p-circuit";
  assert.equal(gate.deny(conn(circuit)), false);
  assert.equal(gate.deny(conn(circuit.replace("tcp/9", "tcp/10"))), false);
  assert.equal(gate.deny(conn("/ip6/2001:db8:1:2::1/tcp/1")), false);
  assert.equal(gate.deny(conn("/ip6/2001:db8:1:2:ffff::9/tcp/1")), true);
  assert.equal(gate.deny(conn("/ip6/2001:db8:1:3::1/tcp/1")), false);
});

Deno.test("ipKey: IPv4, IPv6 /64, IPv4-mapped IPv6 as its IPv4", () => {
  assert.equal(ipKey("/ip4/1.2.3.4/tcp/5"), "1.2.3.4");
  assert.equal(ipKey("/ip6/2001:db8::7/tcp/5"), "2001:db8:0:0::/64");
  assert.equal(ipKey("/ip6/::ffff:1.2.3.4/tcp/5"), "1.2.3.4");
  assert.equal(ipKey("/ip4/1.2.3.4/tcp/5/p2p/x/p2p-circuit"), undefined);
});
