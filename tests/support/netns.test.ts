import assert from "node:assert/strict";
import {
  createNet,
  listNamespaces,
  type Net,
  type NetHost,
  type NetProcess,
  SIM_INTERNET_CIDR,
} from "./netns.ts";
import { eventually } from "./poll.ts";

/** A TCP service in `host` that answers each connection with the address it came from. */
async function whoAmIServer(net: Net, host: NetHost, port: number): Promise<NetProcess> {
  const p = net.spawnRaw(host, [
    "socat",
    `TCP-LISTEN:${port},fork,reuseaddr`,
    "SYSTEM:echo $SOCAT_PEERADDR",
  ]);
  await eventually(
    async () => (await net.exec(host, ["ss", "-Hltn", `sport = :${port}`])).includes(`:${port}`),
    { what: `${host.name} did not listen on ${port}` },
  );
  return p;
}

/** What `from` reads from addr:port, or the failure ("" on timeout). */
async function connect(from: NetHost, addr: string, port: number): Promise<string> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", from.ns, "socat", "-T2", "-", `TCP:${addr}:${port},connect-timeout=1`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
}

Deno.test({
  name: "netns: public hosts reach each other, NAT lets only replies in, a cut link is silent",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const net = await createNet();
  const servers: NetProcess[] = [];
  try {
    assert.equal(SIM_INTERNET_CIDR, "198.18.0.0/15");
    const a = await net.publicHost("a");
    const b = await net.publicHost("b", { rate: "4mbit" });
    const home = await net.home("home");
    const h = await net.natHost(home, "h");
    assert.match(a.ip, /^198\.18\./);
    assert.match(h.ip, /^192\.168\./);
    assert.equal(h.publicIp, home.wanIp);
    assert.match(await net.exec(b, ["tc", "qdisc", "show", "dev", "eth0"]), /tbf .*rate 4Mbit/);

    servers.push(await whoAmIServer(net, a, 5000), await whoAmIServer(net, h, 5000));
    assert.equal(await connect(b, a.ip, 5000), b.ip, "b reaches a directly");
    // Behind NAT: out as the home's WAN address; in, nothing (no route, and the router drops).
    assert.equal(await connect(h, a.ip, 5000), home.wanIp, "h reaches a as its home");
    assert.equal(await connect(a, h.ip, 5000), "", "a cannot reach h's private address");
    assert.equal(await connect(a, home.wanIp, 5000), "", "nor its home's WAN address");

    // The test process reaches a's port through the root namespace's forwarder.
    const url = await net.http(a, 5000);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
    const got = await new Response(conn.readable).text();
    assert.equal(got.trim(), "127.0.0.1");

    await net.cut(b);
    assert.equal(await connect(b, a.ip, 5000), "", "a cut link carries nothing");
    await net.restore(b);
    await eventually(async () => await connect(b, a.ip, 5000) === b.ip, {
      what: "b did not reach a again after its link came back",
    });
  } finally {
    await net.destroy();
  }
  const left = (await listNamespaces()).filter((n) => n.startsWith(`${net.prefix}-`));
  assert.deepEqual(left, [], "destroy() left namespaces behind");
  for (const p of servers) {
    assert.throws(() => Deno.kill(p.pid, "SIGCONT"), "destroy() left a process running");
  }
});
