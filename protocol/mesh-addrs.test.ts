import assert from "node:assert/strict";
import { checkDialAddr, filterDialAddrs, ipv6Problem, ipv6Words } from "./mesh-addrs.ts";

// Real-looking peer ids: the multiaddr parser checks /p2p/ values.
const PEER = "16Uiu2HAmNodeNodeNodeNodeNodeNodeNodeNodeNodeNode";
const OTHER = "16Uiu2HAmOtherOtherOtherOtherOtherOtherOtherOther";
const RELAY = "16Uiu2HAmRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a";
const relays = new Set([RELAY]);

const reasonOf = (addr: string) => {
  const c = checkDialAddr(addr, PEER, relays);
  return c.ok ? undefined : c.reason;
};

Deno.test("dialable: loopback, private and public addresses on tcp and quic, for the reporter", () => {
  for (
    const addr of [
      "/ip4/127.0.0.1/tcp/4001",
      "/ip4/10.1.2.3/tcp/4001",
      "/ip4/192.168.1.20/udp/4001/quic-v1",
      "/ip4/172.16.0.9/tcp/4001",
      "/ip4/100.64.1.1/tcp/4001",
      "/ip4/203.0.113.7/tcp/4001",
      "/ip6/::1/tcp/4001",
      "/ip6/fd12:3456::1/tcp/4001",
      "/ip6/2001:db8::1/udp/4001/quic-v1",
    ]
  ) {
    assert.deepEqual(checkDialAddr(addr, PEER, relays), { ok: true, addr: `${addr}/p2p/${PEER}` });
    const own = `${addr}/p2p/${PEER}`;
    assert.deepEqual(checkDialAddr(own, PEER, relays), { ok: true, addr: own });
  }
  const circuit = `/ip4/127.0.0.1/tcp/9/p2p/${RELAY}/p2p-circuit`;
  assert.deepEqual(checkDialAddr(circuit, PEER, relays), {
    ok: true,
    addr: `${circuit}/p2p/${PEER}`,
  });
});

Deno.test("not dialable: metadata, link-local, multicast, unspecified, broadcast", () => {
  for (
    const [addr, why] of [
      ["/ip4/169.254.169.254/tcp/80", /link-local/],
      ["/ip4/169.254.170.2/tcp/80", /link-local/],
      ["/ip4/100.100.100.200/tcp/80", /metadata/],
      ["/ip4/0.0.0.0/tcp/4001", /unspecified/],
      ["/ip4/224.0.0.251/udp/5353/quic-v1", /multicast/],
      ["/ip4/255.255.255.255/tcp/1", /broadcast/],
      ["/ip6/fe80::1/tcp/4001", /link-local/],
      ["/ip6/fd00:ec2::254/tcp/80", /metadata/],
      ["/ip6/::/tcp/4001", /unspecified/],
      ["/ip6/ff02::1/tcp/4001", /multicast/],
      ["/ip6/::ffff:169.254.169.254/tcp/80", /link-local.*inside IPv6/],
      ["/ip6/64:ff9b::a9fe:a9fe/tcp/80", /link-local.*inside IPv6/],
    ] as const
  ) {
    assert.match(reasonOf(addr) ?? "dialable", why, addr);
  }
});

Deno.test("not dialable: another peer, DNS names, other transports, foreign relays", () => {
  for (
    const [addr, why] of [
      [`/ip4/10.0.0.2/tcp/4001/p2p/${OTHER}`, /another peer/],
      ["/dns4/metadata.google.internal/tcp/80", /DNS names are not dialed/],
      ["/dns/example.com/tcp/4001", /DNS/],
      ["/ip4/10.0.0.2/tcp/0", /transport/],
      ["/ip4/10.0.0.2/udp/4001", /transport/],
      ["/ip4/10.0.0.2/tcp/4001/ws", /carries \/ws/],
      ["/ip4/10.0.0.2/tcp/4001/tls/http", /carries/],
      ["/unix/tmp%2Fsock", /not an ip4/],
      ["not a multiaddr", /not a multiaddr/],
      [`/ip4/10.0.0.2/tcp/9/p2p/${OTHER}/p2p-circuit/p2p/${PEER}`, /another relay|other than/],
      [`/ip4/127.0.0.1/tcp/9/p2p/${RELAY}/p2p-circuit/p2p/${OTHER}`, /circuit to another peer/],
      [`/ip4/169.254.169.254/tcp/9/p2p/${RELAY}/p2p-circuit`, /link-local/],
    ] as const
  ) {
    assert.match(reasonOf(addr) ?? "dialable", why, addr);
  }
});

Deno.test("filterDialAddrs keeps the good ones once, normalised, and says why it dropped the rest", () => {
  const { addrs, dropped } = filterDialAddrs(
    [
      "/ip4/127.0.0.1/tcp/4001",
      `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`,
      "/ip4/169.254.169.254/tcp/80",
      `/ip4/127.0.0.1/tcp/4002/p2p/${OTHER}`,
    ],
    PEER,
    relays,
  );
  assert.deepEqual(addrs, [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`]);
  assert.deepEqual(dropped.map((d) => d.addr), [
    "/ip4/169.254.169.254/tcp/80",
    `/ip4/127.0.0.1/tcp/4002/p2p/${OTHER}`,
  ]);
});

Deno.test("IPv6 words: compressed, full and dotted forms; garbage is no address", () => {
  assert.deepEqual(ipv6Words("::1"), [0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(ipv6Words("fe80::"), [0xfe80, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(ipv6Words("::ffff:1.2.3.4"), [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
  assert.deepEqual(ipv6Words("1:2:3:4:5:6:7:8"), [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const bad of ["1::2::3", "1:2:3", "12345::", "::1.2.3.400", "g::"]) {
    assert.equal(ipv6Words(bad), undefined, bad);
  }
  assert.equal(ipv6Problem("::ffff:10.0.0.1"), undefined); // private IPv4 inside is fine
});
