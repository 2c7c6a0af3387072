/**
 * The relay's mesh status (docs/protocol.md#kind-30621-mesh-status): serve reports (kind 24620)
 * from members folded into relay-signed kind 30621 events, republished within 2 s of any change
 * and pruned of targets that went silent for 30 s.
 *
 * Bounded for large meshes: changes are coalesced into at most one publication a second (plus a
 * heartbeat every 30 s without one); each publication is an index event (`d` relay-mesh, the
 * targets that fit it, the models with their target counts and load sums) and, past it, page
 * events (`d` relay-mesh:N, relay/mesh-status-pack.ts), every event at most 64 KiB; only pages
 * whose targets changed are signed and sent again.
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
  makeMeshStatusPageEvent,
  MESH_STATUS_EVENT_MAX_BYTES,
  MESH_STATUS_MAX_PAGES,
  type MeshModel,
  type MeshStatus,
  type MeshStatusPage,
  meshStatusPageD,
  type MeshStatusPageRef,
  type NostrEvent,
  parseServeReport,
  peerIdFromNostrSecret,
  pubkeyFromPeerId,
  type ServeReport,
  type ServeTarget,
  type Startable,
} from "../protocol/mod.ts";
import type { MemberStore } from "./members.ts";
import { escapedBytes, packTargets } from "./mesh-status-pack.ts";

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
  /** Republish an unchanged status after this long, so members see the relay's status is live. */
  heartbeatMs?: number;
  /** Page events after the index (tests make it small to reach the fair share). */
  maxPages?: number;
  /** The most bytes of one signed 30621 event. */
  maxEventBytes?: number;
}

export interface MeshStatusService extends Startable {
  /** Folds a kind 24620 event (signature already checked); a string is the OK-false message. */
  report(ev: NostrEvent): string | undefined;
  /** Every target the relay holds (not cut into pages), as of the last publication. */
  current(): MeshStatus;
  /** Drops silent targets and non-members' targets now; returns how many went. */
  prune(): number;
  /** Publishes the (empty) status, then prunes on a timer and on every member change. */
  start(): void;
  stop(): void;
}

const STOP_STATES = new Set(["off", "stopping", "stopped", "failed"]);
const FUTURE_SKEW = 60;
/** Room for an event's id, pubkey, sig, tags and keys around its content. */
const EVENT_OVERHEAD = 1024;
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
  const heartbeatMs = init.heartbeatMs ?? 30_000;
  const maxPages = Math.min(init.maxPages ?? MESH_STATUS_MAX_PAGES, MESH_STATUS_MAX_PAGES);
  const maxEventBytes = init.maxEventBytes ?? MESH_STATUS_EVENT_MAX_BYTES;
  /** What each page event last carried, to sign again only the pages that changed. */
  let sentPages: { content: string; ref: MeshStatusPageRef }[] = [];
  const entries = new Map<string, Entry>();
  // Circuits may go through this relay only; its rendezvous peer id is its own key's.
  const relayPeers = new Set([peerIdFromNostrSecret(init.relaySecret)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastPublishMs = -Infinity;
  let lastUpdatedAt = -Infinity;
  let status = build(Math.floor(init.now()));

  const allowed = (pubkey: string) => init.open === true || init.members.isMember(pubkey);

  function sortedTargets(): ServeTarget[] {
    return [...entries.values()].map((e) => e.target).sort((a, b) =>
      a.modelId.localeCompare(b.modelId) || a.peerId.localeCompare(b.peerId)
    );
  }

  function build(updatedAt: number, serveTargets = sortedTargets()): MeshStatus {
    return {
      v: 1,
      type: "mesh-status",
      updatedAt,
      meshId: init.meshId,
      serveTargets,
      models: summarise(serveTargets).map(({ id, name }) => ({ id, name })),
      peerCount: new Set(serveTargets.map((t) => t.peerId)).size,
    };
  }

  /** Signs and sends page `n` unless it carries what it last did; returns its reference. */
  function sendPage(n: number, targets: ServeTarget[], updatedAt: number): MeshStatusPageRef {
    const page: MeshStatusPage = {
      v: 1,
      type: "mesh-status-page",
      meshId: init.meshId,
      page: n,
      serveTargets: targets,
    };
    const content = JSON.stringify(page);
    const sent = sentPages[n - 1];
    if (sent?.content === content) return sent.ref;
    const ev = makeMeshStatusPageEvent(init.relaySecret, page, updatedAt);
    init.publish(ev);
    const ref = { d: meshStatusPageD(n), id: ev.id };
    sentPages[n - 1] = { content, ref };
    return ref;
  }

  function publishNow(): void {
    timer = undefined;
    // Replaceable events tie-break on id within one second, so each status must be newer.
    const updatedAt = Math.max(Math.floor(init.now()), lastUpdatedAt + 1);
    status = build(updatedAt);
    lastUpdatedAt = updatedAt;
    lastPublishMs = performance.now();
    try {
      // Past one event, the models carry their targets' count and load sums, for what a node
      // does not see target by target; a small mesh's status stays as it always was.
      const head: MeshStatus = {
        ...status,
        serveTargets: [],
        models: fitModels(summarise(status.serveTargets)),
        targetCount: status.serveTargets.length,
      };
      // Room for the page references the index may carry, whatever their number.
      const refs = Array.from({ length: maxPages }, (_, i) => ({
        d: meshStatusPageD(i + 1),
        id: "0".repeat(64),
      }));
      const indexBytes = maxEventBytes - EVENT_OVERHEAD - escapedBytes({ ...head, pages: refs });
      const pageBytes = maxEventBytes - EVENT_OVERHEAD -
        escapedBytes({ v: 1, type: "mesh-status-page", meshId: init.meshId, page: maxPages });
      const packed = packTargets(status.serveTargets, { indexBytes, pageBytes, maxPages });
      if (packed.listed < status.serveTargets.length) {
        init.log?.warn(
          `the mesh status lists ${packed.listed} of ${status.serveTargets.length} serving ` +
            "targets: the rest do not fit its pages",
        );
      }
      const pages = packed.pages.map((targets, i) => sendPage(i + 1, targets, updatedAt));
      // Pages the status no longer needs are emptied once, so stored copies stay small.
      for (let n = packed.pages.length + 1; n <= sentPages.length; n++) sendPage(n, [], updatedAt);
      sentPages = sentPages.slice(0, packed.pages.length);
      const index: MeshStatus = pages.length > 0 || packed.listed < status.serveTargets.length
        ? { ...head, serveTargets: packed.inline, pages }
        : status;
      init.publish(makeMeshStatusEvent(init.relaySecret, index));
    } catch (e) {
      init.log?.error(`could not publish the mesh status: ${(e as Error).message}`);
    }
  }

  /** Models listed only past half the index, by most targets first, in the (rare) huge case. */
  function fitModels(models: MeshModel[]): MeshModel[] {
    const room = (maxEventBytes - EVENT_OVERHEAD) / 2;
    if (escapedBytes(models) <= room) return models;
    const kept: MeshModel[] = [];
    let used = 2;
    for (const m of [...models].sort((a, b) => (b.targets ?? 0) - (a.targets ?? 0))) {
      const cost = escapedBytes(m) + 1;
      if (used + cost > room) break;
      kept.push(m);
      used += cost;
    }
    return kept.sort((a, b) => a.id.localeCompare(b.id));
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
      interval = setInterval(() => {
        prune();
        if (performance.now() - lastPublishMs >= heartbeatMs) changed();
      }, init.pruneIntervalMs ?? 2000);
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

/**
 * Each model some entry target offers, with all its targets' count and load: what a client needs
 * to list the mesh's models and weigh them even when not every target is listed.
 */
function summarise(targets: ServeTarget[]): MeshModel[] {
  const models = new Map<string, Required<MeshModel>>();
  // The name of the model's first entry target, as before, so a model's name does not flicker.
  const names = new Map<string, string>();
  for (const t of targets) {
    let m = models.get(t.modelId);
    if (m === undefined) {
      m = { id: t.modelId, name: t.modelName, targets: 0, load: { active: 0, queued: 0 } };
      models.set(t.modelId, m);
    }
    m.targets++;
    m.load.active += t.load.active;
    m.load.queued += t.load.queued;
    if (isEntryTarget(t) && !names.has(t.modelId)) names.set(t.modelId, t.modelName);
  }
  return [...models.values()].filter((m) => names.has(m.id)).map((m) => ({
    ...m,
    name: names.get(m.id)!,
  }));
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
