/**
 * The relay's mesh status (docs/protocol.md#kind-30621-mesh-status): serve reports (kind 24620)
 * from members folded into one relay-signed kind 30621 event, republished within 2 s of any change
 * and pruned of targets that went silent for 30 s.
 *
 * What a report must satisfy, beyond protocol/mesh-status-event.ts's parser, because everything in it
 * is re-published under the relay's signature to every member:
 * - its author is a member (any key with `--open`), its `peerId` is the author's own key, and
 *   its `created_at` is no older than the prune window nor over 60 s ahead;
 * - `modelId` is 1-128 characters of `A-Z a-z 0-9 . _ : @ + / -` starting with a letter or digit
 *   (catalog ids and `hf://` refs pass, file paths do not);
 * - `modelName` and `nodeName` are at most 128 printable characters;
 * - `addrs` are ip4/ip6/dns multiaddrs (no `/unix/` socket paths) of safe characters;
 *   then those no member may dial (protocol/mesh-addrs.ts: another peer's id, link-local or
 *   metadata addresses, DNS names, other transports, circuits through another relay) are
 *   stripped, with a warning, and the rest end in the reporter's /p2p/ id;
 * - no string names a local path (`/home/`, `/Users/`, `/root/`, `file:`, `C:\`, `~/`, `\\`)
 *   or looks like a secret (`nsec1…`, 64 hex characters, `Bearer …`, `sk-…`).
 * A report whose `state` is `off`, `stopping`, `stopped` or `failed` withdraws its target;
 * any other state (`ready`, `waiting`, `loading`, …) lists it: split candidates find each other
 * in the targets before any of them can answer. `models` lists a model only once an entry
 * target (the whole model, or stage 0 of a complete plan) offers it, so no client lists a model
 * nobody can answer yet.
 */
import {
  filterDialAddrs,
  isEntryTarget,
  KIND,
  type Logger,
  makeMeshStatusEvent,
  type MeshStatus,
  type NostrEvent,
  parseServeReport,
  peerIdFromNostrSecret,
  pubkeyFromPeerId,
  type ServeReport,
  type ServeTarget,
  type Startable,
} from "../protocol/mod.ts";
import type { MemberStore } from "./members.ts";

export interface MeshStatusInit {
  relaySecret: Uint8Array;
  meshId: string;
  members: Pick<MemberStore, "isMember" | "onChange">;
  /** Stores and broadcasts the signed 30621 event. */
  publish: (ev: NostrEvent) => void;
  /** UNIX seconds (fractions allowed). */
  now: () => number;
  log?: Logger;
  open?: boolean;
  /** Wait after a change before republishing, so a burst of reports makes one event. */
  republishDelayMs?: number;
  /** Least time between two publishes: keeps created_at strictly increasing in real time. */
  minIntervalMs?: number;
  pruneAfterSeconds?: number;
  pruneIntervalMs?: number;
  /** Serve targets one member may list at once. */
  maxTargetsPerMember?: number;
}

export interface MeshStatusService extends Startable {
  /** Folds a kind 24620 event (signature already checked); a string is the OK-false message. */
  report(ev: NostrEvent): string | undefined;
  current(): MeshStatus;
  /** Drops silent targets and non-members' targets now; returns how many went. */
  prune(): number;
  /** Publishes the (empty) status, then prunes on a timer and on every member change. */
  start(): void;
  stop(): void;
}

const STOP_STATES = new Set(["off", "stopping", "stopped", "failed"]);
const FUTURE_SKEW = 60;
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+/-]{0,127}$/;
const MULTIADDR = /^\/(ip4|ip6|dns|dns4|dns6)\/[A-Za-z0-9._:%/-]+$/;
const LOCAL_PATH =
  /\/(home|Users|root|tmp|var|etc|mnt|opt|srv|private|Volumes)\/|file:|^~|\/~|[A-Za-z]:\\|\\/i;
const SECRET =
  /nsec1[0-9a-z]{20,}|(^|[^0-9a-f])[0-9a-f]{64}([^0-9a-f]|$)|bearer\s|\bsk-[\w-]{16,}/i;

type Entry = {
  target: ServeTarget;
  json: string;
  lastSeen: number;
  reportedAt: number;
  /** The addresses stripped from the last report, to warn once per change. */
  dropped: string;
};

export function createMeshStatus(init: MeshStatusInit): MeshStatusService {
  const delay = init.republishDelayMs ?? 500;
  const minInterval = init.minIntervalMs ?? 1000;
  const pruneAfter = init.pruneAfterSeconds ?? 30;
  const maxTargets = init.maxTargetsPerMember ?? 16;
  const entries = new Map<string, Entry>();
  // Circuits may go through this relay only; its rendezvous peer id is its own key's.
  const relayPeers = new Set([peerIdFromNostrSecret(init.relaySecret)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastPublishMs = -Infinity;
  let lastUpdatedAt = -Infinity;
  let status = build(Math.floor(init.now()));

  const allowed = (pubkey: string) => init.open === true || init.members.isMember(pubkey);

  function build(updatedAt: number): MeshStatus {
    const serveTargets = [...entries.values()].map((e) => e.target).sort((a, b) =>
      a.modelId.localeCompare(b.modelId) || a.peerId.localeCompare(b.peerId)
    );
    const models = new Map<string, string>();
    for (const t of serveTargets) {
      if (isEntryTarget(t) && !models.has(t.modelId)) models.set(t.modelId, t.modelName);
    }
    return {
      v: 1,
      type: "mesh-status",
      updatedAt,
      meshId: init.meshId,
      serveTargets,
      models: [...models].map(([id, name]) => ({ id, name })),
      peerCount: new Set(serveTargets.map((t) => t.peerId)).size,
    };
  }

  function publishNow(): void {
    timer = undefined;
    // Replaceable events tie-break on id within one second, so each status must be newer.
    const updatedAt = Math.max(Math.floor(init.now()), lastUpdatedAt + 1);
    status = build(updatedAt);
    lastUpdatedAt = updatedAt;
    lastPublishMs = performance.now();
    try {
      init.publish(makeMeshStatusEvent(init.relaySecret, status));
    } catch (e) {
      init.log?.error(`could not publish the mesh status: ${(e as Error).message}`);
    }
  }

  function changed(): void {
    if (timer !== undefined) return; // the pending publish will include this change
    const wait = Math.max(delay, lastPublishMs + minInterval - performance.now());
    timer = setTimeout(publishNow, wait);
  }

  function prune(): number {
    const now = init.now();
    let dropped = 0;
    for (const [key, e] of entries) {
      if (now - e.lastSeen < pruneAfter && allowed(e.target.pubkey)) continue;
      entries.delete(key);
      dropped++;
      init.log?.info(
        `serving target ${e.target.modelId} on ${short(e.target.peerId)} dropped: ` +
          (allowed(e.target.pubkey) ? `silent for ${pruneAfter} s` : "no longer a member"),
      );
    }
    if (dropped > 0) changed();
    return dropped;
  }

  function report(ev: NostrEvent): string | undefined {
    if (ev.kind !== KIND.SERVE_REPORT) {
      return `invalid: a serve report is kind ${KIND.SERVE_REPORT}, not ${ev.kind}`;
    }
    if (!allowed(ev.pubkey)) return "restricted: only members may report serving targets";
    const now = init.now();
    if (ev.created_at <= now - pruneAfter) {
      return `invalid: serve report is ${Math.floor(now - ev.created_at)} s old`;
    }
    if (ev.created_at > now + FUTURE_SKEW) return "invalid: serve report is dated in the future";
    let r: ServeReport;
    try {
      r = parseServeReport(ev.content);
    } catch (e) {
      return `invalid: ${(e as Error).message}`;
    }
    if (pubkeyFromPeerId(r.peerId) !== ev.pubkey) return "invalid: peerId is not the author's key";
    const unsafe = unsafeField(r);
    if (unsafe !== undefined) return `invalid: serve report: ${unsafe}`;

    const key = `${ev.pubkey} ${r.peerId} ${r.modelId}`;
    const old = entries.get(key);
    if (old !== undefined && ev.created_at < old.reportedAt) return undefined; // out of order
    if (STOP_STATES.has(r.state)) {
      if (old !== undefined) {
        entries.delete(key);
        init.log?.info(`serving target ${r.modelId} on ${short(r.peerId)} withdrawn (${r.state})`);
        changed();
      }
      return undefined;
    }
    if (old === undefined && countOf(ev.pubkey) >= maxTargets) {
      return `invalid: a member may list at most ${maxTargets} serving targets`;
    }
    const { state: _state, ...fields } = r;
    const addrs = filterDialAddrs(r.addrs, r.peerId, relayPeers);
    const dropped = addrs.dropped.map((d) => `${d.addr} ${d.reason}`).join("; ");
    if (dropped !== "" && dropped !== old?.dropped) {
      init.log?.warn(
        `stripped addresses from ${short(ev.pubkey)}'s serve report, which no member may dial: ` +
          dropped,
      );
    }
    const target: ServeTarget = { ...fields, addrs: addrs.addrs, pubkey: ev.pubkey };
    const json = JSON.stringify(target);
    entries.set(key, { target, json, lastSeen: now, reportedAt: ev.created_at, dropped });
    if (old === undefined) {
      init.log?.info(`member ${short(ev.pubkey)} serves ${r.modelId} on peer ${short(r.peerId)}`);
    }
    if (old?.json !== json) changed();
    return undefined;
  }

  function countOf(pubkey: string): number {
    let n = 0;
    for (const e of entries.values()) if (e.target.pubkey === pubkey) n++;
    return n;
  }

  let unsubscribe: (() => void) | undefined;
  let interval: ReturnType<typeof setInterval> | undefined;

  return {
    name: "mesh status publisher",
    report,
    current: () => status,
    prune,
    start() {
      unsubscribe = init.members.onChange(() => void prune());
      interval = setInterval(prune, init.pruneIntervalMs ?? 2000);
      publishNow(); // an empty status at start, so members find one even before any report
    },
    stop() {
      unsubscribe?.();
      clearInterval(interval);
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** Why a parsed report may not be re-published under the relay's key, or undefined. */
function unsafeField(r: ServeReport): string | undefined {
  if (!MODEL_ID.test(r.modelId)) {
    return "modelId must be 1-128 characters of letters, digits and . _ : @ + / -";
  }
  for (const [name, v] of [["modelName", r.modelName], ["nodeName", r.nodeName]] as const) {
    if (v.length > 128) return `${name} is longer than 128 characters`;
    if (/\p{Cc}/u.test(v)) return `${name} contains control characters`;
  }
  for (const [i, a] of r.addrs.entries()) {
    if (!MULTIADDR.test(a) || a.includes("/unix/")) {
      return `addrs[${i}] is not an ip4/ip6/dns multiaddr`;
    }
  }
  const strings: [string, string][] = [
    ["modelId", r.modelId],
    ["modelName", r.modelName],
    ["nodeName", r.nodeName],
    ...r.addrs.map((a, i): [string, string] => [`addrs[${i}]`, a]),
  ];
  for (const [name, v] of strings) {
    if (!name.startsWith("addrs") && LOCAL_PATH.test(v)) return `${name} looks like a local path`;
    if (SECRET.test(v)) return `${name} looks like it carries a secret`;
  }
  return undefined;
}

function short(id: string): string {
  return `${id.slice(0, 8)}…`;
}
