/**
 * Which serving node gets the next request for a model. `pickTarget` is a pure choice over the
 * mesh status' serve targets (a peer that failed lately only when no other is left);
 * `createRouter` keeps what the choice needs between requests (the requests this node has in
 * flight per peer, measured latencies, recent failures) with the clock and the dice injected, so
 * tests drive it with fake ones.
 *
 * Many client nodes route on the same serve reports, which are up to a second old: if each took
 * the least loaded target, they would all take the same one until the next report (a herd).
 * The router compares two targets drawn at random instead (power of two choices): the less
 * loaded of the two wins, which keeps every node near the mean load however many routers share
 * the stale view (router.test.ts measures it with 50).
 *
 * Prefix affinity: a conversation's turns go to the node that answered its last turn, which holds
 * its prompt in a cache (inference/prefix-cache.ts) and reads only the new tokens, as long as that
 * node is usable, has no queue and carries at most AFFINITY_SLACK requests more than the two-choice
 * pick; else the two-choice pick takes it (and the conversation's cache starts there).
 */
import type { ServeTarget } from "../protocol/mod.ts";

export interface RouteView {
  /** Requests this node has running on each peer now: fresher than any serve report. */
  active: ReadonlyMap<string, number>;
  /** Latest measured latency per peer, in ms (connection round trip or time to first event). */
  latencyMs: ReadonlyMap<string, number>;
  /** Peers that failed recently, excluded until this time (ms, the router's clock). */
  failedUntil: ReadonlyMap<string, number>;
  now: number;
  /** Peers already tried for this request. */
  exclude?: ReadonlySet<string>;
  /** A counter that turns among equal candidates (round robin). */
  turn?: number;
  /**
   * How many usable targets, drawn at random, the choice compares (default: all of them, the
   * least loaded wins). The router compares 2.
   */
  choices?: number;
  /** A number in [0, 1) (default Math.random): draws the compared targets. */
  random?: () => number;
  /** The peer that holds this request's prompt prefix (prefix affinity), if one does. */
  preferred?: string;
}

/**
 * How many more requests than the two-choice pick a node holding the conversation's prefix may
 * carry and still get it: reading a long prompt again costs more than sharing a node's steps
 * with two more streams, while a queue there would cost a whole answer's wait.
 */
export const AFFINITY_SLACK = 2;

/**
 * Latencies this close count as equal: on loopback or one LAN every peer is "near", and load
 * should decide. Beyond it the nearer peer wins among equally loaded ones.
 */
const LATENCY_SLACK_MS = 20;

/** Load as the router weighs it: the target's own report plus what this node sent it since. */
function loadOf(t: ServeTarget, view: RouteView): number {
  return t.load.active + t.load.queued + (view.active.get(t.peerId) ?? 0);
}

export function pickTarget(targets: ServeTarget[], view: RouteView): ServeTarget | undefined {
  const untried = targets.filter((t) => !view.exclude?.has(t.peerId));
  const failedUntil = (t: ServeTarget) => view.failedUntil.get(t.peerId) ?? 0;
  const usable = untried.filter((t) => failedUntil(t) <= view.now);
  if (usable.length === 0) {
    // All of them failed lately: a failure is a hint, not a ban, so one dial (which fails fast
    // when the peer is really gone) beats refusing every request for 10 s after a hiccup.
    const soonest = Math.min(...untried.map(failedUntil));
    return untried.find((t) => failedUntil(t) === soonest);
  }
  const choice = twoChoice(usable, view);
  const preferred = usable.find((t) => t.peerId === view.preferred);
  if (
    preferred && preferred.load.queued === 0 &&
    loadOf(preferred, view) <= loadOf(choice, view) + AFFINITY_SLACK
  ) return preferred;
  return choice;
}

/** Of `usable` (not empty), the less loaded of the drawn ones, then the nearest, in turn. */
function twoChoice(usable: ServeTarget[], view: RouteView): ServeTarget {
  const compared = draw(usable, view.choices ?? usable.length, view.random ?? Math.random);
  const minLoad = Math.min(...compared.map((t) => loadOf(t, view)));
  const leastLoaded = compared.filter((t) => loadOf(t, view) === minLoad);
  // An unmeasured peer counts as near: it gets tried, and measured, rather than starved.
  const latency = (t: ServeTarget) => view.latencyMs.get(t.peerId) ?? 0;
  const best = Math.min(...leastLoaded.map(latency));
  const near = leastLoaded
    .filter((t) => latency(t) <= best + LATENCY_SLACK_MS)
    .sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  return near[(view.turn ?? 0) % near.length];
}

/** `n` of `items` drawn at random without repeats (all of them, in order, when n covers them). */
function draw<T>(items: T[], n: number, random: () => number): T[] {
  if (n >= items.length) return items;
  const pool = [...items];
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
    out.push(pool[i]);
  }
  return out;
}

export interface RouterInit {
  /** ms; default Date.now. */
  now?: () => number;
  /** How long a failed peer is left out; default 10 s. */
  failMs?: number;
  /** Targets compared per choice; default 2 (power of two choices). */
  choices?: number;
  /** Dice in [0, 1); default Math.random. */
  random?: () => number;
}

export interface Router {
  /** `affinity`: the request's conversation (affinityKey), whose last turn's node is preferred. */
  pick(
    targets: ServeTarget[],
    exclude?: ReadonlySet<string>,
    affinity?: string,
  ): ServeTarget | undefined;
  /** `peerId` answered the conversation `affinity`: it holds the prompt's cache now. */
  remember(affinity: string, peerId: string): void;
  /** Counts a request as running on `peerId` until the returned function is called. */
  begin(peerId: string): () => void;
  markFailed(peerId: string): void;
  /** A success clears the failure mark and records the latency. */
  markOk(peerId: string, latencyMs: number): void;
  /**
   * An open connection to `peerId` leaves pings unanswered now (peer-watch.ts), for SILENT_MS;
   * `false` takes the mark back (its connection is gone: a new dial will tell).
   */
  markSilent(peerId: string, silent?: boolean): void;
  /** Whether `peerId` is silent now: frozen or cut off, though its connection looks open. */
  silent(peerId: string): boolean;
  activeOn(peerId: string): number;
}

/**
 * Long enough not to dial a dead node for every request (a killed one refuses at once; a frozen one
 * peer-watch marks silent), short enough that a node back from a relay restart or a sleep gets its
 * share of requests again within seconds.
 */
const FAIL_MS = 10_000;
/** peer-watch marks a silent peer again each round (every 2–5 s); a mark it stops renewing ends. */
const SILENT_MS = 8_000;
/** Conversations whose node the router remembers; the least recently answered is forgotten. */
const AFFINITY_ENTRIES = 4096;

export function createRouter(init: RouterInit = {}): Router {
  const now = init.now ?? Date.now;
  const failMs = init.failMs ?? FAIL_MS;
  const choices = init.choices ?? 2;
  const random = init.random ?? Math.random;
  const active = new Map<string, number>();
  const latencyMs = new Map<string, number>();
  const failedUntil = new Map<string, number>();
  const silentUntil = new Map<string, number>();
  const affinities = new Map<string, string>(); // in the order last answered
  let turn = 0;

  return {
    pick(targets, exclude, affinity) {
      const t = now();
      for (const [peer, until] of failedUntil) if (until <= t) failedUntil.delete(peer);
      return pickTarget(targets, {
        active,
        latencyMs,
        failedUntil,
        now: t,
        exclude,
        turn: turn++,
        choices,
        random,
        preferred: affinity === undefined ? undefined : affinities.get(affinity),
      });
    },
    remember(affinity, peerId) {
      affinities.delete(affinity);
      affinities.set(affinity, peerId);
      if (affinities.size > AFFINITY_ENTRIES) affinities.delete(affinities.keys().next().value!);
    },
    begin(peerId) {
      active.set(peerId, (active.get(peerId) ?? 0) + 1);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        const n = (active.get(peerId) ?? 1) - 1;
        if (n > 0) active.set(peerId, n);
        else active.delete(peerId);
      };
    },
    markFailed(peerId) {
      failedUntil.set(peerId, now() + failMs);
    },
    markOk(peerId, ms) {
      failedUntil.delete(peerId);
      silentUntil.delete(peerId);
      latencyMs.set(peerId, ms);
    },
    markSilent(peerId, silent = true) {
      if (silent) silentUntil.set(peerId, now() + SILENT_MS);
      else silentUntil.delete(peerId);
    },
    silent: (peerId) => (silentUntil.get(peerId) ?? 0) > now(),
    activeOn: (peerId) => active.get(peerId) ?? 0,
  };
}
