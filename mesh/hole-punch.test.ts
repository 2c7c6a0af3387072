import assert from "node:assert/strict";
import { multiaddr } from "@multiformats/multiaddr";
import { inCidrs, parseCidrs, punchAddrs, punchTargets } from "./hole-punch.ts";

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
