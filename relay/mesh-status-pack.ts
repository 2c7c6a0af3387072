/**
 * Cuts the mesh status' targets into events of bounded size (docs/protocol.md#kind-30621-mesh-status):
 * the index event first, then up to MESH_STATUS_MAX_PAGES page events, each signed event at most
 * MESH_STATUS_EVENT_MAX_BYTES. Past what they hold, each model keeps a fair share of the room,
 * its least loaded entry targets first, so every client still finds targets of its model to
 * spread load over and fail over to.
 */
import { isEntryTarget, type ServeTarget } from "../protocol/mod.ts";

export interface PackLimits {
  /** Bytes the index's targets may take (escaped, as they sit in the event's content). */
  indexBytes: number;
  /** Bytes one page's targets may take. */
  pageBytes: number;
  maxPages: number;
}

export interface Packed {
  inline: ServeTarget[];
  pages: ServeTarget[][];
  /** Targets listed: all of them unless the pages ran out of room. */
  listed: number;
}

const encoder = new TextEncoder();

/** What a value costs inside an event's content string: its JSON, escaped once more. */
export function escapedBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(JSON.stringify(value))).length - 2;
}

/** `targets` sorted by modelId then peerId; the packing keeps that order across events. */
export function packTargets(targets: ServeTarget[], limits: PackLimits): Packed {
  const costs = new Map(targets.map((t) => [t, escapedBytes(t) + 1]));
  const total = [...costs.values()].reduce((a, b) => a + b, 0);
  const biggest = Math.max(0, ...costs.values());
  // A page can end short by at most one target: keep that much slack per event.
  const room = limits.indexBytes + limits.maxPages * limits.pageBytes -
    (limits.maxPages + 1) * biggest;
  const chosen = total <= room ? targets : fairShare(targets, costs, room);
  const events: ServeTarget[][] = [[]];
  let used = 0;
  for (const t of chosen) {
    const cost = costs.get(t)!;
    const budget = events.length === 1 ? limits.indexBytes : limits.pageBytes;
    if (used + cost > budget && events.at(-1)!.length > 0) {
      if (events.length > limits.maxPages) break;
      events.push([]);
      used = 0;
    }
    events.at(-1)!.push(t);
    used += cost;
  }
  const [inline, ...pages] = events;
  return { inline, pages, listed: events.reduce((n, e) => n + e.length, 0) };
}

/** Round robin over models, each model's entry targets least loaded first, until `room` is full. */
function fairShare(
  targets: ServeTarget[],
  costs: Map<ServeTarget, number>,
  room: number,
): ServeTarget[] {
  const byModel = new Map<string, ServeTarget[]>();
  for (const t of targets) {
    const list = byModel.get(t.modelId);
    if (list === undefined) byModel.set(t.modelId, [t]);
    else list.push(t);
  }
  const queues = [...byModel.values()].map((list) =>
    list.sort((a, b) =>
      Number(isEntryTarget(b)) - Number(isEntryTarget(a)) ||
      a.load.active + a.load.queued - b.load.active - b.load.queued ||
      a.peerId.localeCompare(b.peerId)
    )
  );
  const chosen = new Set<ServeTarget>();
  let left = room;
  for (let round = 0; queues.some((q) => q.length > round); round++) {
    for (const q of queues) {
      const t = q[round];
      if (t === undefined || costs.get(t)! > left) continue;
      chosen.add(t);
      left -= costs.get(t)!;
    }
  }
  return targets.filter((t) => chosen.has(t));
}
