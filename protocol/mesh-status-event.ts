/**
 * Serve reports (kind 24620, from serving members) and the mesh status they fold into (kind
 * 30621, relay-signed, addressable, NIP-70 protected): docs/protocol.md#event-kinds.
 */
import { finalizeEvent, verifyEvent } from "nostr-tools/pure";
import { KIND, MESH_STATUS_D, type NostrEvent } from "./kinds.ts";
import { MESH_STATUS_MAX_PAGES, meshStatusPageD } from "./mesh-status-limits.ts";
import { isHex64, toEventShape } from "./event-shape.ts";

export interface ServeReport {
  modelId: string;
  modelName: string;
  peerId: string;
  nodeName: string;
  addrs: string[];
  /**
   * null: the whole model. []: a split candidate waiting for peers, or a spare. [[start, end]]:
   * the layers [start, end) it holds, loaded and ready.
   */
  stages: [number, number][] | null;
  capacity: { memoryBytes: number };
  load: { active: number; queued: number };
  state: string;
  /** The GGUF file's SHA-256 (lowercase hex): split candidates of one model match on it. */
  sha256?: string;
  /** Request features the node supports beyond the base ones. */
  features?: string[];
  /** A split candidate's current plan id (SHA-256 of the sorted candidates), null with none. */
  planId?: string | null;
}

export interface ServeTarget extends Omit<ServeReport, "state"> {
  pubkey: string;
}

/** One model the mesh offers, with what the relay knows of all its targets (listed or not). */
export interface MeshModel {
  id: string;
  name: string;
  /** Targets of this model the relay holds, entry targets or not (absent from older relays). */
  targets?: number;
  /** The sum of those targets' reported load. */
  load?: { active: number; queued: number };
}

/** Where the rest of the targets are: a page event's `d` tag and the id the index expects. */
export interface MeshStatusPageRef {
  d: string;
  id: string;
}

export interface MeshStatus {
  v: 1;
  type: "mesh-status";
  updatedAt: number;
  meshId: string;
  /**
   * In the index event, the targets that fit it; the rest are in `pages`. After a node assembles
   * the pages (mesh/relay-state.ts), every listed target, sorted by modelId then peerId.
   */
  serveTargets: ServeTarget[];
  models: MeshModel[];
  peerCount: number;
  /** Targets the relay holds; more than are listed only past the pages' capacity. */
  targetCount?: number;
  /** The page events (kind 30621, `d` relay-mesh:N) holding the targets after `serveTargets`. */
  pages?: MeshStatusPageRef[];
}

// Bounds keep one member's report from bloating the relay-signed status everyone reads.
const MAX_STRING = 256;
const MAX_ADDRS = 32;
const MAX_STAGES = 256;
const MAX_FEATURES = 32;
const FEATURE = /^[a-z0-9_-]{1,32}$/;

type Obj = Record<string, unknown>;

export function obj(v: unknown, field: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new Error(`${field} must be an object`);
  }
  return v as Obj;
}

function str(v: unknown, field: string, opts: { nonEmpty?: boolean } = {}): string {
  if (typeof v !== "string") throw new Error(`${field} must be a string`);
  if (opts.nonEmpty && v === "") throw new Error(`${field} must not be empty`);
  if (v.length > MAX_STRING) throw new Error(`${field} is longer than ${MAX_STRING} characters`);
  return v;
}

function count(v: unknown, field: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) {
    throw new Error(`${field} must be a non-negative integer`);
  }
  return v as number;
}

/** A model id or name that names a file on someone's disk must never be published. */
function noLocalPath(v: string, field: string): string {
  if (/^(\/|~|\.|file:)/i.test(v) || v.includes("\\") || /^[a-z]:/i.test(v)) {
    throw new Error(`${field} looks like a local path; report a catalog id, hf:// ref or name`);
  }
  return v;
}

function stages(v: unknown, field: string): [number, number][] | null {
  if (v === null) return null;
  if (!Array.isArray(v)) throw new Error(`${field} must be null or an array of [start, end]`);
  if (v.length > MAX_STAGES) throw new Error(`${field} has more than ${MAX_STAGES} entries`);
  return v.map((s, i) => {
    if (!Array.isArray(s) || s.length !== 2) {
      throw new Error(`${field}[${i}] must be [LAYER_START, LAYER_END]`);
    }
    const start = count(s[0], `${field}[${i}][0]`);
    const end = count(s[1], `${field}[${i}][1]`);
    if (end < start) throw new Error(`${field}[${i}] ends before it starts`);
    if (end === start) {
      throw new Error(`${field}[${i}] holds no layer: [start, end) needs start < end`);
    }
    return [start, end];
  });
}

function hex64(v: unknown, field: string): string {
  if (!isHex64(v)) throw new Error(`${field} must be 64 lowercase hex characters`);
  return v;
}

function features(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) throw new Error(`${field} must be an array of feature names`);
  if (v.length > MAX_FEATURES) throw new Error(`${field} has more than ${MAX_FEATURES} entries`);
  return v.map((f, i) => {
    if (typeof f !== "string" || !FEATURE.test(f)) {
      throw new Error(`${field}[${i}] must be 1-32 characters of a-z 0-9 _ -`);
    }
    return f;
  });
}

/** The optional fields, set only when present: reports from older nodes have none of them. */
function splitFields(o: Obj, at: string): Pick<ServeReport, "sha256" | "features" | "planId"> {
  const out: Pick<ServeReport, "sha256" | "features" | "planId"> = {};
  if (o.sha256 !== undefined) out.sha256 = hex64(o.sha256, `${at}sha256`);
  if (o.features !== undefined) out.features = features(o.features, `${at}features`);
  if (o.planId !== undefined) {
    if (o.planId !== null && !isHex64(o.planId)) {
      throw new Error(`${at}planId must be null or 64 lowercase hex characters`);
    }
    out.planId = o.planId;
  }
  return out;
}

/**
 * Whether clients may send requests to this target: it holds the whole model, or stage 0 of a
 * complete plan (a stage-0 node reports its range only once every stage of its plan is ready).
 * A waiting candidate or spare (`[]`) and a later stage are reached only through stage 0.
 */
export function isEntryTarget(t: Pick<ServeTarget, "stages">): boolean {
  return t.stages === null || (t.stages.length > 0 && t.stages[0][0] === 0);
}

function targetFields(o: Obj, at: string): Omit<ServeReport, "state"> {
  if (!Array.isArray(o.addrs)) throw new Error(`${at}addrs must be an array of multiaddrs`);
  if (o.addrs.length > MAX_ADDRS) throw new Error(`${at}addrs has more than ${MAX_ADDRS} entries`);
  const addrs = o.addrs.map((a, i) => {
    const s = str(a, `${at}addrs[${i}]`, { nonEmpty: true });
    if (!s.startsWith("/")) throw new Error(`${at}addrs[${i}] is not a multiaddr`);
    return s;
  });
  const capacity = obj(o.capacity, `${at}capacity`);
  const load = obj(o.load, `${at}load`);
  return {
    modelId: noLocalPath(str(o.modelId, `${at}modelId`, { nonEmpty: true }), `${at}modelId`),
    modelName: noLocalPath(str(o.modelName, `${at}modelName`), `${at}modelName`),
    peerId: str(o.peerId, `${at}peerId`, { nonEmpty: true }),
    nodeName: str(o.nodeName, `${at}nodeName`),
    addrs,
    stages: stages(o.stages, `${at}stages`),
    capacity: { memoryBytes: count(capacity.memoryBytes, `${at}capacity.memoryBytes`) },
    load: {
      active: count(load.active, `${at}load.active`),
      queued: count(load.queued, `${at}load.queued`),
    },
    ...splitFields(o, at),
  };
}

/** Parses a 24620 content; throws "serve report: FIELD ..." naming the first bad field. */
export function parseServeReport(content: string): ServeReport {
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(content);
    } catch {
      throw new Error("content is not JSON");
    }
    const o = obj(raw, "content");
    return { ...targetFields(o, ""), state: str(o.state, "state", { nonEmpty: true }) };
  } catch (e) {
    throw new Error(`serve report: ${(e as Error).message}`);
  }
}

export function makeMeshStatusEvent(
  relaySecret: Uint8Array,
  status: MeshStatus,
): NostrEvent {
  return finalizeEvent({
    kind: KIND.MESH_STATUS,
    created_at: status.updatedAt,
    tags: [["-"], ["d", MESH_STATUS_D], ["k", "mesh-status"]],
    content: JSON.stringify(status),
  }, relaySecret);
}

/** A status' or page's `serveTargets`; throws naming the bad field. */
export function serveTargets(v: unknown): ServeTarget[] {
  if (!Array.isArray(v)) throw new Error("serveTargets must be an array");
  return v.map((t, i) => {
    const at = `serveTargets[${i}].`;
    const target = obj(t, `serveTargets[${i}]`);
    if (!isHex64(target.pubkey)) throw new Error(`${at}pubkey must be 64 hex characters`);
    return { ...targetFields(target, at), pubkey: target.pubkey };
  });
}

function meshModel(m: unknown, at: string): MeshModel {
  const model = obj(m, at);
  const out: MeshModel = {
    id: str(model.id, `${at}.id`, { nonEmpty: true }),
    name: str(model.name, `${at}.name`),
  };
  if (model.targets !== undefined) out.targets = count(model.targets, `${at}.targets`);
  if (model.load !== undefined) {
    const load = obj(model.load, `${at}.load`);
    out.load = {
      active: count(load.active, `${at}.load.active`),
      queued: count(load.queued, `${at}.load.queued`),
    };
  }
  return out;
}

/** `targetCount` and `pages`, set only when present: a small mesh's status has neither. */
function pagingFields(o: Obj): Pick<MeshStatus, "targetCount" | "pages"> {
  const out: Pick<MeshStatus, "targetCount" | "pages"> = {};
  if (o.targetCount !== undefined) out.targetCount = count(o.targetCount, "targetCount");
  if (o.pages !== undefined) {
    if (!Array.isArray(o.pages)) throw new Error("pages must be an array");
    if (o.pages.length > MESH_STATUS_MAX_PAGES) {
      throw new Error(`pages has more than ${MESH_STATUS_MAX_PAGES} entries`);
    }
    out.pages = o.pages.map((p, i) => {
      const ref = obj(p, `pages[${i}]`);
      const d = str(ref.d, `pages[${i}].d`, { nonEmpty: true });
      if (d !== meshStatusPageD(i + 1)) {
        throw new Error(`pages[${i}].d must be "${meshStatusPageD(i + 1)}"`);
      }
      if (!isHex64(ref.id)) throw new Error(`pages[${i}].id must be 64 lowercase hex characters`);
      return { d, id: ref.id };
    });
  }
  return out;
}

/**
 * Parses a 30621 event. With `relayPubkey` it also insists that the relay signed it (checked on
 * a fresh copy of the event). Throws "mesh status: ..." naming the bad field.
 */
export function parseMeshStatus(ev: NostrEvent, opts: { relayPubkey?: string } = {}): MeshStatus {
  try {
    if (ev.kind !== KIND.MESH_STATUS) throw new Error(`kind is ${ev.kind}, expected 30621`);
    if (!ev.tags.some((t) => t[0] === "d" && t[1] === MESH_STATUS_D)) {
      throw new Error(`has no ["d","${MESH_STATUS_D}"] tag`);
    }
    if (opts.relayPubkey !== undefined) {
      if (ev.pubkey !== opts.relayPubkey) throw new Error("is not signed by the relay");
      if (!verifyEvent(toEventShape(ev))) throw new Error("has an invalid id or signature");
    }
    let raw: unknown;
    try {
      raw = JSON.parse(ev.content);
    } catch {
      throw new Error("content is not JSON");
    }
    const o = obj(raw, "content");
    if (o.v !== 1) throw new Error("v must be 1");
    if (o.type !== "mesh-status") throw new Error('type must be "mesh-status"');
    if (!Array.isArray(o.models)) throw new Error("models must be an array");
    return {
      v: 1,
      type: "mesh-status",
      updatedAt: count(o.updatedAt, "updatedAt"),
      meshId: str(o.meshId, "meshId", { nonEmpty: true }),
      serveTargets: serveTargets(o.serveTargets),
      models: o.models.map((m, i) => meshModel(m, `models[${i}]`)),
      peerCount: count(o.peerCount, "peerCount"),
      ...pagingFields(o),
    };
  } catch (e) {
    throw new Error(`mesh status: ${(e as Error).message}`);
  }
}
