/**
 * The relay's honest path under a stranger's siege: `main.ts relay` (default limits) with a
 * prefilled store; NIP-11, REQ→EOSE and the owner's EVENT→OK latencies measured first quiet,
 * then while 1,000 idle WebSocket connections and an AUTH flood are held.
 *
 * The 1,000 sockets are strangers' (never authenticated), 16 from each of 63 loopback addresses
 * (127.0.0.2–64): the per-address cap on unauthenticated sockets is 16, so that is what an
 * attacker with 63 addresses gets. They stay silent for the few seconds measured, well inside
 * the 60 s idle timeout. The flood is one more stranger's socket offering two valid AUTH events
 * in turn, 2,000 a second (each differs from the one last accepted, so each would take a
 * signature check without the AUTH rate limit).
 *
 * Run alone: `deno run -A tests/bench/relay-siege.ts`; `deno task bench --only relay` runs it
 * after the load table.
 */
import { finalizeEvent } from "nostr-tools/pure";
import type { NostrEvent } from "../../protocol/mod.ts";
import { connectTestClient, type TestClient } from "../support/relay-test-client.ts";
import { newKey, type RelayHarness, startRelayHarness } from "../relay-harness.ts";
import { openFrom, type StrangerSocket } from "../stranger-clients.ts";
import { memoryKiB } from "../support/process-memory.ts";

export interface Latency {
  p50: number;
  p95: number;
}

export interface SiegeRow {
  phase: "quiet" | "siege";
  /** Sockets the relay held besides the measuring ones. */
  held: number;
  nip11: Latency;
  req: Latency;
  eventOk: Latency;
  /** AUTH frames answered per second during the measurement, and how many were accepted. */
  authAnswered: number;
  authAccepted: number;
  rssMiB: number;
}

const SAMPLES = 50;
const IDLE_SOCKETS = 1000;
const PER_ADDRESS = 16;
const PREFILL = 2000;
const REQ_FILTER = { kinds: [1], limit: 100 };
/** About what one connection forced before (~1,060 signature checks/s, issue 9). */
const FLOOD_PER_SECOND = 2000;
const FLOOD_BACKLOG = 2000;

export async function relaySiege(log: (line: string) => void = () => {}): Promise<SiegeRow[]> {
  const relay = await startRelayHarness({ prefix: "grove-relay-siege-" });
  try {
    log(`relay siege: prefilling ${PREFILL} events...`);
    await prefill(relay);
    const quiet = await measure(relay, "quiet", 0, undefined);
    log(`  opening ${IDLE_SOCKETS} idle stranger sockets from 63 addresses...`);
    const idle = await openIdle(relay.url);
    const flood = await Flood.start(relay);
    try {
      const siege = await measure(relay, "siege", idle.length + 1, flood);
      return [quiet, siege];
    } finally {
      flood.stop();
      for (const s of idle) s.close();
    }
  } finally {
    await relay.stop();
  }
}

async function measure(
  relay: RelayHarness,
  phase: SiegeRow["phase"],
  held: number,
  flood: Flood | undefined,
): Promise<SiegeRow> {
  // Its own connection per phase: the EVENT bucket's burst (60) covers one phase's samples.
  const owner = await authed(relay);
  const started = performance.now();
  const answeredBefore = flood?.answered ?? 0;
  const acceptedBefore = flood?.accepted ?? 0;
  const nip11 = await timed(async () => {
    const res = await fetch(relay.httpUrl, { headers: { accept: "application/nostr+json" } });
    await res.json();
  });
  const reader = await connectTestClient(relay.url);
  const req = await timed(async (i) => {
    reader.send(["REQ", `r${i}`, REQ_FILTER]);
    const end = await reader.next((m) =>
      (m[0] === "EOSE" || m[0] === "CLOSED") && m[1] === `r${i}`
    );
    if (end[0] !== "EOSE") throw new Error(`relay siege: REQ refused: ${end[2]}`);
    reader.send(["CLOSE", `r${i}`]);
  });
  await reader.close();
  const t = Math.floor(Date.now() / 1000);
  const events = Array.from({ length: SAMPLES }, (_, i) =>
    finalizeEvent(
      { kind: 1, created_at: t, tags: [], content: `${phase} ${i} ${crypto.randomUUID()}` },
      relay.owner.sk,
    ));
  const eventOk = await timed(async (i) => {
    const ok = await owner.publish(events[i]);
    if (ok[2] !== true) throw new Error(`relay siege: the owner's event was refused: ${ok[3]}`);
  });
  const seconds = (performance.now() - started) / 1000;
  await owner.close();
  return {
    phase,
    held,
    nip11,
    req,
    eventOk,
    authAnswered: ((flood?.answered ?? 0) - answeredBefore) / seconds,
    authAccepted: (flood?.accepted ?? 0) - acceptedBefore,
    rssMiB: memoryKiB(relay.pid()) / 1024,
  };
}

async function timed(fn: (i: number) => Promise<void>): Promise<Latency> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t = performance.now();
    await fn(i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  return { p50: q(0.5), p95: q(0.95) };
}

async function authed(relay: RelayHarness): Promise<TestClient> {
  const client = await connectTestClient(relay.url);
  const ok = await client.auth(relay.owner.sk, relay.url);
  if (ok[2] !== true) throw new Error(`relay siege: the owner's AUTH was refused: ${ok[3]}`);
  return client;
}

/** The owner publishes PREFILL events over several connections (each has its own bucket). */
async function prefill(relay: RelayHarness): Promise<void> {
  const t = Math.floor(Date.now() / 1000);
  for (let done = 0; done < PREFILL;) {
    const client = await authed(relay);
    const batch = Math.min(50, PREFILL - done);
    const events: NostrEvent[] = Array.from({ length: batch }, (_, i) =>
      finalizeEvent(
        { kind: 1, created_at: t - done - i, tags: [], content: `prefill ${done + i}` },
        relay.owner.sk,
      ));
    for (const ev of events) client.send(["EVENT", ev]);
    for (const ev of events) await client.next((m) => m[0] === "OK" && m[1] === ev.id);
    await client.close();
    done += batch;
  }
}

async function openIdle(url: string): Promise<StrangerSocket[]> {
  const out: StrangerSocket[] = [];
  for (let i = 0; i < IDLE_SOCKETS; i += PER_ADDRESS * 4) {
    const batch = Array.from(
      { length: Math.min(PER_ADDRESS * 4, IDLE_SOCKETS - i) },
      (_, j) => openFrom(url, `127.0.0.${2 + Math.floor((i + j) / PER_ADDRESS)}`),
    );
    for (const opened of await Promise.all(batch)) {
      if (!opened.ok) throw new Error(`relay siege: an idle socket was refused (${opened.status})`);
      out.push(opened.socket);
    }
  }
  return out;
}

/**
 * A stranger's socket offering AUTH frames at a fixed rate (FLOOD_PER_SECOND), whatever the
 * relay answers, with at most FLOOD_BACKLOG unanswered (a saturated relay is not buried).
 */
class Flood {
  private sent = 0;
  private timer: ReturnType<typeof setInterval>;
  private constructor(private socket: StrangerSocket, auths: NostrEvent[]) {
    const perTick = FLOOD_PER_SECOND / 100;
    this.timer = setInterval(() => {
      for (let i = 0; i < perTick && this.sent - this.answered < FLOOD_BACKLOG; i++) {
        this.socket.send(["AUTH", auths[this.sent++ % 2]]);
      }
    }, 10);
  }

  static async start(relay: RelayHarness): Promise<Flood> {
    const opened = await openFrom(relay.url, "127.0.0.200");
    if (!opened.ok) throw new Error("relay siege: the flooding socket was refused");
    const socket = opened.socket;
    const challenge = (await socket.next((m) => m[0] === "AUTH"))[1] as string;
    const signed = () =>
      finalizeEvent({
        kind: 22242,
        created_at: Math.floor(Date.now() / 1000),
        tags: [["relay", relay.url], ["challenge", challenge]],
        content: "",
      }, newKey().sk);
    return new Flood(socket, [signed(), signed()]);
  }

  /** OKs received so far (every message after the challenge is one). */
  get answered(): number {
    return this.socket.inbox.length - 1;
  }

  get accepted(): number {
    return this.socket.inbox.filter((m) => m[0] === "OK" && m[2] === true).length;
  }

  stop(): void {
    clearInterval(this.timer);
    this.socket.close();
  }
}

export function relaySiegeTable(rows: SiegeRow[]): string {
  const ms = (l: Latency) => `${l.p50.toFixed(2)} / ${l.p95.toFixed(2)}`;
  const lines = [
    "| phase | sockets held | NIP-11 p50 / p95 ms | REQ→EOSE p50 / p95 ms | owner EVENT→OK p50 / p95 ms | AUTH answered/s | AUTH accepted | relay RSS MiB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const siege = r.phase === "siege";
    lines.push(
      `| ${siege ? `${IDLE_SOCKETS} idle + AUTH flood` : "quiet"} | ${r.held} | ${ms(r.nip11)} | ` +
        `${ms(r.req)} | ${ms(r.eventOk)} | ${siege ? r.authAnswered.toFixed(0) : "–"} | ` +
        `${siege ? r.authAccepted : "–"} | ${r.rssMiB.toFixed(0)} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const rows = await relaySiege((l) => console.error(l));
  console.log(`\n${relaySiegeTable(rows)}\n`);
  console.log(
    `${SAMPLES} samples each; REQ = ${JSON.stringify(REQ_FILTER)} on ${PREFILL} stored events; ` +
      `AUTH flood offered at ${FLOOD_PER_SECOND}/s.`,
  );
}
