/**
 * The 30621 page events (docs/protocol.md#kind-30621-mesh-status): targets that do not fit the
 * index event (`d` relay-mesh) go into page events `d` relay-mesh:1…N, which the index names by
 * event id, so a node assembles one consistent list: the index's targets, then each page's, only
 * once it holds every page at the id the index names.
 */
import { finalizeEvent, verifyEvent } from "nostr-tools/pure";
import { isHex64, toEventShape } from "./event-shape.ts";
import { KIND, MESH_STATUS_D, type NostrEvent } from "./kinds.ts";
import { type MeshStatus, type ServeTarget, serveTargets } from "./mesh-status-event.ts";
import { MESH_STATUS_MAX_PAGES, meshStatusPageD } from "./mesh-status-limits.ts";

export interface MeshStatusPage {
  v: 1;
  type: "mesh-status-page";
  meshId: string;
  /** 1-based: the index is page 0. */
  page: number;
  serveTargets: ServeTarget[];
}

const PAGE_D = new RegExp(`^${MESH_STATUS_D}:([1-9][0-9]?)$`);

/** The page number of a 30621 `d` tag: 0 for the index, undefined for anything else. */
export function meshStatusPageOf(ev: NostrEvent): number | undefined {
  const d = ev.tags.find((t) => t[0] === "d")?.[1];
  if (d === MESH_STATUS_D) return 0;
  const m = d === undefined ? null : PAGE_D.exec(d);
  const n = m === null ? 0 : Number(m[1]);
  return n >= 1 && n <= MESH_STATUS_MAX_PAGES ? n : undefined;
}

/** The subscription filter for the whole status: the index and every page, signed by the relay. */
export function meshStatusFilter(relayPubkey: string): {
  kinds: number[];
  authors: string[];
  "#d": string[];
} {
  const ds = [MESH_STATUS_D];
  for (let n = 1; n <= MESH_STATUS_MAX_PAGES; n++) ds.push(meshStatusPageD(n));
  return { kinds: [KIND.MESH_STATUS], authors: [relayPubkey], "#d": ds };
}

export function makeMeshStatusPageEvent(
  relaySecret: Uint8Array,
  page: MeshStatusPage,
  createdAt: number,
): NostrEvent {
  return finalizeEvent({
    kind: KIND.MESH_STATUS,
    created_at: createdAt,
    tags: [["-"], ["d", meshStatusPageD(page.page)], ["k", "mesh-status-page"]],
    content: JSON.stringify(page),
  }, relaySecret);
}

/** Parses a page event; with `relayPubkey`, insists the relay signed it. Throws naming the field. */
export function parseMeshStatusPage(
  ev: NostrEvent,
  opts: { relayPubkey?: string } = {},
): MeshStatusPage {
  try {
    if (ev.kind !== KIND.MESH_STATUS) throw new Error(`kind is ${ev.kind}, expected 30621`);
    const n = meshStatusPageOf(ev);
    if (n === undefined || n === 0) throw new Error(`has no ["d","${MESH_STATUS_D}:N"] tag`);
    if (opts.relayPubkey !== undefined) {
      if (ev.pubkey !== opts.relayPubkey) throw new Error("is not signed by the relay");
      if (!verifyEvent(toEventShape(ev))) throw new Error("has an invalid id or signature");
    }
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(ev.content);
    } catch {
      throw new Error("content is not JSON");
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw new Error("content must be an object");
    }
    if (o.v !== 1) throw new Error("v must be 1");
    if (o.type !== "mesh-status-page") throw new Error('type must be "mesh-status-page"');
    if (o.page !== n) throw new Error(`page must be ${n}, as its d tag says`);
    if (typeof o.meshId !== "string" || o.meshId === "") {
      throw new Error("meshId must be a non-empty string");
    }
    return { v: 1, type: "mesh-status-page", meshId: o.meshId, page: n, ...targets(o) };
  } catch (e) {
    throw new Error(`mesh status page: ${(e as Error).message}`);
  }
}

function targets(o: Record<string, unknown>): { serveTargets: ServeTarget[] } {
  return { serveTargets: serveTargets(o.serveTargets) };
}

/**
 * The whole status from an index and the pages held (by page number, with their event ids), or
 * undefined while some page the index names is missing or at another id than it names: the
 * pages go out before their index, so a node meanwhile keeps the last whole status.
 */
export function assembleMeshStatus(
  index: MeshStatus,
  pages: ReadonlyMap<number, { id: string; page: MeshStatusPage }>,
): MeshStatus | undefined {
  if (index.pages === undefined || index.pages.length === 0) return index;
  const all = [...index.serveTargets];
  for (const [i, ref] of index.pages.entries()) {
    const held = pages.get(i + 1);
    if (held === undefined || held.id !== ref.id || !isHex64(ref.id)) return undefined;
    if (held.page.meshId !== index.meshId) return undefined;
    all.push(...held.page.serveTargets);
  }
  return { ...index, serveTargets: all };
}
