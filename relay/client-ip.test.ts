import assert from "node:assert/strict";
import { clientIp, ipKey } from "./client-ip.ts";

Deno.test("client ip: forwarding headers count only with --trust-proxy", () => {
  const headers = { "x-forwarded-for": "203.0.113.9, 198.51.100.4", "x-real-ip": "192.0.2.1" };
  assert.equal(clientIp("127.0.0.1", headers, false), "127.0.0.1");
  assert.equal(clientIp("127.0.0.1", headers, true), "192.0.2.1", "X-Real-IP first");
  const forwarded = { "x-forwarded-for": "203.0.113.9, 198.51.100.4" };
  assert.equal(clientIp("127.0.0.1", forwarded, true), "198.51.100.4", "the proxy's own hop");
  assert.equal(clientIp("127.0.0.1", { "x-real-ip": "not an ip" }, true), "127.0.0.1");
  assert.equal(clientIp("127.0.0.1", { "x-forwarded-for": "[2001:db8::1]" }, true), "2001:db8::1");
});

Deno.test("client ip: IPv4 counts as itself, IPv6 by its /64", () => {
  assert.equal(ipKey("127.0.0.2"), "127.0.0.2");
  assert.equal(ipKey("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(ipKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(ipKey("2001:0db8:0001:0002:bbbb:0:0:9"), "2001:db8:1:2::/64");
  assert.equal(ipKey("::1"), "0:0:0:0::/64");
});
