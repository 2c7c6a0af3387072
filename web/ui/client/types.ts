/// <reference lib="dom" />
/**
 * What the dashboard reads from the node API (docs/http-api.md#node-api): only the fields the
 * page uses, each optional where an older or simpler node may leave it out.
 */

export type NodeState = "off" | "starting" | "running" | "stopping" | "failed";

export interface Progress {
  phase: "downloading" | "hashing" | "loading" | "joining";
  bytes?: number;
  total?: number | null;
  rate?: number;
  eta?: number | null;
}

export interface PeerView {
  peerId: string;
  nodeName?: string;
  modelId?: string;
  load?: { active: number; queued: number };
  activeFromHere?: number;
  path?: "direct" | "relayed" | null;
}

export interface NodeStatus {
  state: NodeState;
  mode: string;
  health: { status: "ok" | "degraded" | "failed"; reason: string | null };
  apiBaseUrl: string;
  modelId: string | null;
  modelName: string | null;
  progress?: Progress | null;
  peerId?: string;
  npub?: string;
  meshId?: string;
  inMemberList?: boolean;
  split?: Record<string, unknown> | null;
  relay?: { url: string; connected: boolean };
  admission?: { admitted: boolean; denied: boolean; reason: string | null };
  peers: PeerView[];
}

export interface ServeTargetView {
  peerId: string;
  nodeName?: string;
  modelId: string;
  modelName?: string;
  stages?: [number, number][];
  load?: { active: number; queued: number };
  [field: string]: unknown;
}

export interface Availability {
  capable: boolean;
  admitted: boolean;
  available: boolean;
  reason: string | null;
  models: { id: string; name: string }[];
  serveTargets: ServeTargetView[];
}

/** One poll of the node: what every panel renders from. */
export interface Snapshot {
  status: NodeStatus | null;
  availability: Availability | null;
  /** Why the last poll failed (node unreachable, 401 …); null when it worked. */
  error: string | null;
  /** The relay denied this node: panels that need the mesh disable themselves. */
  denied: boolean;
}

export interface PanelContext {
  /** The panel's own <section>, with its <h2> already in it. */
  root: HTMLElement;
  /** Asks for a poll now (after an action), instead of waiting for the next tick. */
  refresh(): void;
}

export interface Panel {
  update(snapshot: Snapshot): void;
}

/** The exact words the node and the page use when the relay refuses this node. */
export const MESH_DENIED_MESSAGE = "Relay mesh denied this node — check your relay membership.";
