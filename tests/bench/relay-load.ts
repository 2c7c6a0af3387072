/**
 * Relay load: the relay process (`main.ts relay`, default limits) with N concurrent
 * authenticated member clients on loopback, each publishing for a fixed time. Measures events
 * accepted per second (OK true) and the REQ→EOSE round trip of a second client while the load
 * runs, on a store that a prefill made non-trivial.
 *
 * Clients behave as a polite Nostr client does: up to WINDOW events in flight, and a 100 ms pause
 * before re-sending an event refused with `rate-limited:`. Each connection has its own token
 * bucket (600 events/min, burst 60), so "cap" is the most the limit lets N clients land.
 *
 * Run alone: `deno run -A tests/bench/relay-load.ts`; `deno task bench` runs it after inference.
 */
import { finalizeEvent } from "nostr-tools/pure";
import type { NostrEvent } from "../../protocol/mod.ts";
import { type Key, newKey, nip86, type RelayHarness, startRelayHarness } from "../relay-harness.ts";

export interface RelayLoadRow {
  clients: number;
  seconds: number;
  accepted: number;
  acceptedPerSecond: number;
  /** What the per-connection token buckets allow in this time. */
  cap: number;
  rateLimited: number;
  otherRefusals: number;
  storeEvents: number;
  req: { samples: number; p50: number; p95: number; p99: number };
}

export interface RelayLoadOptions {
  levels?: number[];
  seconds?: number;
  prefill?: number;
  log?: (line: string) => void;
}

const WINDOW = 8;
const BURST = 60;
const PER_SECOND = 10;
const REQ_FILTER = { kinds: [1], limit: 100 };

export async function relayLoad(opts: RelayLoadOptions = {}): Promise<RelayLoadRow[]> {
  const levels = opts.levels ?? [1, 8, 32];
  const seconds = opts.seconds ?? 5;
  const log = opts.log ?? (() => {});
  const relay = await startRelayHarness({ prefix: "grove-relay-bench-" });
  try {
    const keys = await addMembers(relay, Math.max(...levels, 40));
    log(`relay up at ${relay.url}; prefilling ${opts.prefill ?? 2000} events...`);
    let stored = await prefill(relay, keys, opts.prefill ?? 2000);
    const rows: RelayLoadRow[] = [];
    const idle = await measureReqs(relay, () => false, 60);
    rows.push({
      clients: 0,
      seconds: 0,
      accepted: 0,
      acceptedPerSecond: 0,
      cap: 0,
      rateLimited: 0,
      otherRefusals: 0,
      storeEvents: stored,
      req: idle,
    });
    for (const n of levels) {
      log(`  ${n} client(s) publishing for ${seconds} s...`);
      const perClient = BURST + PER_SECOND * seconds + 10;
      const clients = await connectAll(relay.url, keys.slice(0, n), () => perClient);
      const deadline = performance.now() + seconds * 1000;
      const timeUp = () => performance.now() >= deadline;
      const [results, req] = await Promise.all([
        Promise.all(clients.map((c) => c.run(timeUp))),
        measureReqs(relay, timeUp, Infinity),
      ]);
      clients.forEach((c) => c.close());
      const accepted = results.reduce((s, r) => s + r.accepted, 0);
      stored += accepted;
      rows.push({
        clients: n,
        seconds,
        accepted,
        acceptedPerSecond: accepted / seconds,
        cap: n * (BURST + PER_SECOND * seconds),
        rateLimited: results.reduce((s, r) => s + r.rateLimited, 0),
        otherRefusals: results.reduce((s, r) => s + r.other, 0),
        storeEvents: stored,
        req,
      });
    }
    if (!relay.alive()) throw new Error("the relay process died under load");
    return rows;
  } finally {
    await relay.stop();
  }
}

async function addMembers(relay: RelayHarness, n: number): Promise<Key[]> {
  const keys = Array.from({ length: n }, newKey);
  for (const k of keys) {
    const res = await nip86(relay, relay.owner, "allowpubkey", [k.pk]);
    if (res.status !== 200) throw new Error(`allowpubkey failed: ${JSON.stringify(res.json)}`);
  }
  return keys;
}

/**
 * Publishers for `keys`, 8 connecting at once: the relay lets one address hold 16 sockets that
 * have not authenticated yet (max_unauthenticated_connections_per_ip; idle keep-alive HTTP
 * sockets count too), and every client here comes from 127.0.0.1. Each authenticates as a
 * member as soon as it is open, and then no longer counts.
 */
async function connectAll(
  url: string,
  keys: Key[],
  count: () => number,
): Promise<Publisher[]> {
  const out: Publisher[] = [];
  for (let i = 0; i < keys.length; i += 8) {
    out.push(
      ...await Promise.all(keys.slice(i, i + 8).map((k) => Publisher.connect(url, k, count()))),
    );
  }
  return out;
}

/** `count` events, spread over connections so that no bucket runs dry. */
async function prefill(relay: RelayHarness, keys: Key[], count: number): Promise<number> {
  const perConn = BURST - 10;
  const conns = Math.ceil(count / perConn);
  let done = 0;
  for (let i = 0; i < conns; i += keys.length) {
    const batch = keys.slice(0, Math.min(keys.length, conns - i));
    const clients = await connectAll(
      relay.url,
      batch,
      () => Math.min(perConn, count - done),
    );
    const results = await Promise.all(clients.map((c) => c.run(() => false)));
    clients.forEach((c) => c.close());
    done += results.reduce((s, r) => s + r.accepted, 0);
  }
  return done;
}

/** REQ→EOSE round trips, one at a time, until `stop()` or `max` samples; in milliseconds. */
async function measureReqs(relay: RelayHarness, stop: () => boolean, max: number) {
  // Two connections take turns: each has its own REQ bucket.
  const conns = await Promise.all([0, 1].map(() => Socket.open(relay.url)));
  const times: number[] = [];
  try {
    for (let i = 0; times.length < max && !(stop() && times.length >= 20); i++) {
      const sock = conns[i % 2];
      const subId = `lat${i}`;
      const t = performance.now();
      sock.send(["REQ", subId, REQ_FILTER]);
      const end = await sock.until((m) => (m[0] === "EOSE" || m[0] === "CLOSED") && m[1] === subId);
      if (end[0] === "EOSE") {
        times.push(performance.now() - t);
        sock.send(["CLOSE", subId]);
      } else {
        await new Promise((r) => setTimeout(r, 100)); // rate-limited: let the bucket refill
      }
    }
  } finally {
    conns.forEach((c) => c.close());
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? NaN;
  return { samples: times.length, p50: q(0.5), p95: q(0.95), p99: q(0.99) };
}

/** A WebSocket that hands each parsed message to whoever waits for it. */
class Socket {
  private waiters: { match: (m: unknown[]) => boolean; resolve: (m: unknown[]) => void }[] = [];
  challenge = "";
  private constructor(private ws: WebSocket) {}

  static async open(url: string): Promise<Socket> {
    const ws = new WebSocket(url);
    const sock = new Socket(ws);
    const challenge = sock.until((m) => m[0] === "AUTH");
    ws.onmessage = (e) => sock.dispatch(JSON.parse(e.data));
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`could not connect to ${url}`));
    });
    sock.challenge = (await challenge)[1] as string;
    return sock;
  }

  private dispatch(m: unknown[]) {
    const i = this.waiters.findIndex((w) => w.match(m));
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
  }

  until(match: (m: unknown[]) => boolean, timeoutMs = 30_000): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("relay bench: no answer in time")),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  send(msg: unknown[]) {
    this.ws.send(JSON.stringify(msg));
  }

  close() {
    this.ws.close();
  }
}

/** One member's connection with pre-signed events (signing is not what is measured). */
class Publisher {
  private constructor(private sock: Socket, private events: NostrEvent[]) {}

  static async connect(url: string, key: Key, count: number): Promise<Publisher> {
    const sock = await Socket.open(url);
    const auth = finalizeEvent({
      kind: 22242,
      created_at: Math.floor(Date.now() / 1000),
      tags: [["relay", url], ["challenge", sock.challenge]],
      content: "",
    }, key.sk);
    const ok = sock.until((m) => m[0] === "OK" && m[1] === auth.id);
    sock.send(["AUTH", auth]);
    if ((await ok)[2] !== true) throw new Error("relay bench: AUTH refused");
    const t = Math.floor(Date.now() / 1000);
    const tag = crypto.randomUUID();
    const events = Array.from(
      { length: count },
      (_, i) =>
        finalizeEvent({ kind: 1, created_at: t, tags: [], content: `load ${tag} ${i}` }, key.sk),
    );
    return new Publisher(sock, events);
  }

  /** Publishes until every event is accepted or time is up. */
  async run(timeUp: () => boolean) {
    const r = { accepted: 0, rateLimited: 0, other: 0 };
    const queue = [...this.events];
    const lane = async () => {
      while (queue.length > 0 && !timeUp()) {
        const ev = queue.shift()!;
        const answer = this.sock.until((m) => m[0] === "OK" && m[1] === ev.id);
        this.sock.send(["EVENT", ev]);
        const m = await answer;
        if (m[2] === true) r.accepted++;
        else if (String(m[3]).startsWith("rate-limited:")) {
          r.rateLimited++;
          queue.push(ev);
          await new Promise((res) => setTimeout(res, 100));
        } else r.other++;
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
    return r;
  }

  close() {
    this.sock.close();
  }
}

export function relayLoadTable(rows: RelayLoadRow[]): string {
  const ms = (v: number) => Number.isNaN(v) ? "–" : v.toFixed(1);
  const lines = [
    "| clients | accepted/s | accepted | cap (limit) | rate-limited | other refused | store | REQ p50 ms | p95 | p99 | samples |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const idle = r.clients === 0;
    lines.push(
      `| ${idle ? "idle" : r.clients} | ${idle ? "–" : r.acceptedPerSecond.toFixed(0)} | ` +
        `${idle ? "–" : r.accepted} | ${idle ? "–" : r.cap} | ${idle ? "–" : r.rateLimited} | ` +
        `${idle ? "–" : r.otherRefusals} | ${r.storeEvents} | ${ms(r.req.p50)} | ` +
        `${ms(r.req.p95)} | ${ms(r.req.p99)} | ${r.req.samples} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const started = performance.now();
  const rows = await relayLoad({ log: (l) => console.error(l) });
  console.log(`\n${relayLoadTable(rows)}\n`);
  console.log(
    `REQ = ${JSON.stringify(REQ_FILTER)} from a separate client while the load runs. ` +
      `Took ${((performance.now() - started) / 1000).toFixed(0)} s.`,
  );
}
