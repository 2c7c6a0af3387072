/**
 * A simulated network on one machine for the fault, NAT and scale tests: Linux network
 * namespaces joined by veth pairs. An "internet" namespace holds a bridge; every public host
 * (the relay's, serving nodes with a public address) and every home router has a link to it; a
 * home router masquerades its private LAN (iptables MASQUERADE, unsolicited inbound dropped),
 * and the hosts behind it have a link to the router's LAN bridge. Links can be rate-limited
 * (`tc tbf`) and cut (`ip link set down`). Nothing here reaches a real network: namespaces have
 * no link out of the simulated internet.
 *
 * The test process stays in the root namespace: `http(host, port)` forwards a loopback port of
 * the root namespace to a port inside a host (socat on a Unix socket in the host, a small pipe
 * here), so tests fetch a node's API as on loopback without adding any route into the network.
 *
 * Every name carries a per-run prefix (`gv` and six random characters) so parallel test files
 * never collide; `destroy()` removes every namespace (and with them their links, bridges and
 * iptables rules) and process, and `createNet()` first sweeps prefixed namespaces left by a
 * crashed run more than an hour ago.
 *
 * Needs root, `ip` and `tc` (iproute2), `iptables` and `socat`: a missing one is an error that
 * says what to install, never a skip.
 */
import { type GroveProcess, spawnGrove } from "../mesh-harness.ts";
import { eventually } from "./poll.ts";

/**
 * The simulated internet's addresses: 198.18.0.0/15, reserved for benchmarking network
 * devices (RFC 2544) and never routed on the real internet. libp2p counts it as private, so
 * tests tell the code to treat it as public with this env setting (NAT engineer, issue 14).
 */
export const SIM_INTERNET_CIDR = "198.18.0.0/15";
export const PUBLIC_CIDRS_ENV = "GROVE_TEST_PUBLIC_CIDRS";
/** The environment every Grove process in the simulated network gets. */
export const SIM_ENV: Readonly<Record<string, string>> = { [PUBLIC_CIDRS_ENV]: SIM_INTERNET_CIDR };

const PREFIX_RE = /^gv[0-9a-z]{6}-/;
const STALE_MS = 60 * 60 * 1000;
const TBF = ["burst", "32kbit", "latency", "400ms"];

export interface NetHost {
  name: string;
  /** Its network namespace. */
  ns: string;
  /** Its own address on its link: public, or private behind a home's NAT. */
  ip: string;
  /** The address others see its connections come from (its home's WAN address behind NAT). */
  publicIp: string;
  /** The home it sits behind, if any. */
  home?: Home;
}

export interface Home {
  name: string;
  /** The router's namespace (MASQUERADE, forwarding). */
  ns: string;
  wanIp: string;
  /** e.g. 192.168.3.0/24 */
  lan: string;
}

export interface NetProcess {
  pid: number;
  child: Deno.ChildProcess;
  exited: Promise<Deno.CommandStatus>;
  kill(signal?: Deno.Signal): void;
}

export interface LinkOptions {
  /** `tc tbf` rate both ways on this link, e.g. "2mbit". */
  rate?: string;
}

export interface Net {
  /** The per-run name prefix, e.g. "gvk3x9q2". */
  prefix: string;
  /** Env for every Grove process here (GROVE_TEST_PUBLIC_CIDRS). */
  env: Readonly<Record<string, string>>;
  /** A host with a public address on the simulated internet. */
  publicHost(name: string, opts?: LinkOptions): Promise<NetHost>;
  /** A home: a NAT router on the internet with a private LAN (192.168.N.0/24). */
  home(name: string, opts?: LinkOptions): Promise<Home>;
  /** A host on `home`'s LAN, reaching out through its NAT. */
  natHost(home: Home, name: string, opts?: LinkOptions): Promise<NetHost>;
  /** Rate-limits the host's (or a home's WAN) link both ways (`tc tbf`), replacing any limit. */
  limit(host: NetHost | Home, rate: string): Promise<void>;
  /** Takes the host's link down at its far end (the host sees no carrier, its peers silence). */
  cut(host: NetHost | Home): Promise<void>;
  restore(host: NetHost | Home): Promise<void>;
  /** Runs a command inside the host's namespace and returns its output; throws on failure. */
  exec(host: NetHost | Home, cmd: string[]): Promise<string>;
  /** `main.ts ARGS` inside the host; stopped in destroy(). */
  spawn(host: NetHost, args: string[], env?: Record<string, string>): GroveProcess;
  /** Any command inside the host; stopped in destroy(). */
  spawnRaw(host: NetHost | Home, cmd: string[]): NetProcess;
  /**
   * An `http://127.0.0.1:PORT` in the root namespace (where the test runs) that reaches
   * `addr:port` inside the host (addr defaults to the host's loopback).
   */
  http(host: NetHost, port: number, addr?: string): Promise<string>;
  /** Stops every process and removes every namespace, link and rule; safe to call twice. */
  destroy(): Promise<void>;
}

async function run(cmd: string[], ok = false): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdin: "null" }).output();
  } catch (err) {
    throw new Error(`could not run ${cmd[0]}: ${(err as Error).message}`);
  }
  const dec = new TextDecoder();
  if (!out.success && !ok) {
    throw new Error(`${cmd.join(" ")} failed (${out.code}): ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

/** Fails, naming what to install, where the simulated network cannot be built. */
export async function requireNetTools(): Promise<void> {
  if (Deno.uid() !== 0) {
    throw new Error(
      "the simulated network (tests/support/netns.ts) needs root: run the tests as root",
    );
  }
  const missing: string[] = [];
  for (
    const [tool, pkg] of [["ip", "iproute2"], ["tc", "iproute2"], ["iptables", "iptables"], [
      "socat",
      "socat",
    ]]
  ) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).output();
    if (!found.success && !missing.includes(pkg)) missing.push(pkg);
  }
  if (missing.length > 0) {
    throw new Error(
      `the simulated network needs ${missing.join(", ")}: apt-get install -y ${
        missing.join(" ")
      } (.ci/run installs them)`,
    );
  }
}

/** Removes prefixed namespaces older than an hour (a crashed run's), with their processes. */
export async function sweepStale(now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await listNamespaces()) {
    if (!PREFIX_RE.test(ns)) continue;
    const stat = await Deno.stat(`/run/netns/${ns}`).catch(() => null);
    const born = stat?.mtime?.getTime() ?? stat?.birthtime?.getTime();
    if (born === undefined || now - born < STALE_MS) continue;
    await removeNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

export async function listNamespaces(): Promise<string[]> {
  const out = await run(["ip", "netns", "list"]);
  return out.split("\n").map((l) => l.split(" ")[0]).filter((n) => n !== "");
}

/** Kills what still runs inside `ns` (only our prefixed namespaces get here), then deletes it. */
async function removeNamespace(ns: string): Promise<void> {
  const pids = (await run(["ip", "netns", "pids", ns], true)).split("\n").filter((p) => p !== "");
  for (const pid of pids) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  await run(["ip", "netns", "del", ns], true);
}

function randomPrefix(): string {
  const abc = "0123456789abcdefghijklmnopqrstuvwxyz";
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "gv" + Array.from(bytes, (b) => abc[b % abc.length]).join("");
}

/** Builds the internet namespace; hosts and homes are added with the returned Net. */
export async function createNet(): Promise<Net> {
  await requireNetTools();
  await sweepStale();
  const prefix = randomPrefix();
  const inet = `${prefix}-inet`;
  const namespaces: string[] = [];
  const procs: { kill(s?: Deno.Signal): void; exited: Promise<unknown> }[] = [];
  const listeners: Deno.Listener[] = [];
  const tmp = await Deno.makeTempDir({ prefix: `${prefix}-` });
  let nextPublic = 10; // 198.18.0.10, .11, …
  let nextHome = 1; // 192.168.1.0/24, …
  let nextLink = 0;
  /** Where each host's (or home's) link ends on the far side: namespace and interface. */
  const farEnd = new Map<string, { ns: string; dev: string; nearDev: string }>();
  let destroyed = false;

  const ip = (ns: string, ...args: string[]) => run(["ip", "-n", ns, ...args]);
  const inNs = (ns: string, ...cmd: string[]) => run(["ip", "netns", "exec", ns, ...cmd]);

  async function addNamespace(name: string): Promise<string> {
    if (!/^[a-z0-9-]{1,30}$/.test(name)) {
      throw new Error(`host name "${name}": use 1-30 of a-z, 0-9 and -`);
    }
    const ns = `${prefix}-${name}`;
    if (namespaces.includes(ns)) throw new Error(`the simulated network already has "${name}"`);
    await run(["ip", "netns", "add", ns]);
    namespaces.push(ns);
    await ip(ns, "link", "set", "lo", "up");
    return ns;
  }

  /** A veth from `bridgeNs`'s bridge `bridge` to `ns`, where it is `dev` with `cidr`. */
  async function link(
    bridgeNs: string,
    bridge: string,
    ns: string,
    dev: string,
    cidr: string,
    opts: LinkOptions,
  ): Promise<void> {
    const far = `v${nextLink++}`;
    await ip(bridgeNs, "link", "add", far, "type", "veth", "peer", "name", dev, "netns", ns);
    await ip(bridgeNs, "link", "set", far, "master", bridge, "up");
    await ip(ns, "addr", "add", cidr, "dev", dev);
    await ip(ns, "link", "set", dev, "up");
    farEnd.set(ns, { ns: bridgeNs, dev: far, nearDev: dev });
    if (opts.rate) await limitNs(ns, opts.rate);
  }

  async function limitNs(ns: string, rate: string): Promise<void> {
    const end = farEnd.get(ns)!;
    for (const [where, dev] of [[ns, end.nearDev], [end.ns, end.dev]]) {
      await run([
        "tc",
        "-n",
        where,
        "qdisc",
        "replace",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        rate,
        ...TBF,
      ]);
    }
  }

  const publicAddress = () => {
    const n = nextPublic++;
    if (n > 65_000) throw new Error("the simulated internet ran out of addresses");
    return `198.18.${n >> 8}.${n & 255}`;
  };

  try {
    await run(["ip", "netns", "add", inet]);
    namespaces.push(inet);
    await ip(inet, "link", "add", "br0", "type", "bridge");
    await ip(inet, "link", "set", "br0", "up");
  } catch (err) {
    for (const ns of namespaces) await removeNamespace(ns);
    throw err;
  }

  const nsOf = (h: NetHost | Home) => h.ns;
  const hostLans = new Map<string, number>(); // home ns → next host number

  const net: Net = {
    prefix,
    env: SIM_ENV,
    async publicHost(name, opts = {}) {
      const ns = await addNamespace(name);
      const addr = publicAddress();
      await link(inet, "br0", ns, "eth0", `${addr}/16`, opts);
      return { name, ns, ip: addr, publicIp: addr };
    },
    async home(name, opts = {}) {
      const ns = await addNamespace(name);
      const wanIp = publicAddress();
      const k = nextHome++;
      if (k > 254) throw new Error("the simulated network has at most 254 homes");
      await link(inet, "br0", ns, "wan", `${wanIp}/16`, opts);
      await ip(ns, "link", "add", "lan", "type", "bridge");
      await ip(ns, "addr", "add", `192.168.${k}.1/24`, "dev", "lan");
      await ip(ns, "link", "set", "lan", "up");
      await inNs(ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
      // A home router: its LAN leaves as the WAN address; from outside only replies come in.
      const ipt = (...rule: string[]) => inNs(ns, "iptables", "-w", ...rule);
      await ipt("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE");
      await ipt("-A", "FORWARD", "-i", "lan", "-j", "ACCEPT");
      // From outside only replies come in, forwarded or to the router itself. Unsolicited packets
      // to the router are dropped too, as home routers do: a RST from it would end a hole punch's
      // early SYN, and the conntrack entry an answered one leaves makes MASQUERADE move the punch
      // port (mesh/hole-punch.ts).
      for (const chain of ["FORWARD", "INPUT"]) {
        const replies = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"];
        await ipt("-A", chain, "-i", "wan", ...replies);
        await ipt("-A", chain, "-i", "wan", "-j", "DROP");
      }
      hostLans.set(ns, 10);
      return { name, ns, wanIp, lan: `192.168.${k}.0/24` };
    },
    async natHost(home, name, opts = {}) {
      const ns = await addNamespace(name);
      const j = hostLans.get(home.ns);
      if (j === undefined) throw new Error(`"${home.name}" is not a home of this network`);
      if (j > 254) throw new Error(`home "${home.name}" is full`);
      hostLans.set(home.ns, j + 1);
      const base = home.lan.slice(0, home.lan.lastIndexOf("."));
      const addr = `${base}.${j}`;
      await link(home.ns, "lan", ns, "eth0", `${addr}/24`, opts);
      await ip(ns, "route", "add", "default", "via", `${base}.1`);
      return { name, ns, ip: addr, publicIp: home.wanIp, home };
    },
    limit: (host, rate) => limitNs(nsOf(host), rate),
    async cut(host) {
      const end = farEnd.get(nsOf(host))!;
      await ip(end.ns, "link", "set", end.dev, "down");
    },
    async restore(host) {
      const end = farEnd.get(nsOf(host))!;
      await ip(end.ns, "link", "set", end.dev, "up");
    },
    exec: (host, cmd) => inNs(nsOf(host), ...cmd),
    spawn(host, args, env = {}) {
      if (destroyed) throw new Error("the simulated network was destroyed");
      const p = spawnGrove(args, { ...SIM_ENV, ...env }, { netns: host.ns });
      procs.push(p);
      return p;
    },
    spawnRaw(host, cmd) {
      if (destroyed) throw new Error("the simulated network was destroyed");
      const child = new Deno.Command("ip", {
        args: ["netns", "exec", nsOf(host), ...cmd],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const p: NetProcess = {
        pid: child.pid,
        child,
        exited: child.status,
        kill(signal = "SIGKILL") {
          try {
            child.kill(signal);
          } catch {
            // already gone
          }
        },
      };
      procs.push(p);
      return p;
    },
    async http(host, port, addr = "127.0.0.1") {
      const sock = `${tmp}/${host.name}-${port}.sock`;
      const socat = net.spawnRaw(host, [
        "socat",
        `UNIX-LISTEN:${sock},fork,mode=600`,
        `TCP:${addr}:${port}`,
      ]);
      let gone = false;
      socat.exited.then(() => gone = true);
      await eventually(async () => {
        if (gone) throw new Error(`socat for ${host.name}:${port} exited`);
        return await Deno.stat(sock).then(() => true, () => false);
      }, { what: `the forwarder to ${host.name}:${port} did not start`, intervalMs: 10 });
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      listeners.push(listener);
      void (async () => {
        for await (const conn of listener) void pipe(conn, sock);
      })().catch(() => {});
      return `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const l of listeners) {
        try {
          l.close();
        } catch {
          // closed
        }
      }
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.exited.catch(() => {})));
      for (const ns of [...namespaces].reverse()) await removeNamespace(ns);
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    },
  };
  return net;
}

async function pipe(conn: Deno.Conn, sock: string): Promise<void> {
  let unix: Deno.UnixConn;
  try {
    unix = await Deno.connect({ transport: "unix", path: sock });
  } catch {
    conn.close();
    return;
  }
  await Promise.allSettled([
    conn.readable.pipeTo(unix.writable),
    unix.readable.pipeTo(conn.writable),
  ]);
}
