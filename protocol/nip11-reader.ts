/**
 * NIP-11 relay information as Grove nodes read it (docs/protocol.md#nip-11). A relay without a
 * usable `mesh` object parses fine (mesh undefined); `requireMesh` is where a node fails closed.
 */
import { isHex64 } from "./event-shape.ts";

export interface MeshInfo {
  id: string;
  rendezvous: string[];
  admission_url: string;
  status_kind: 30621;
}

export interface RelayLimitation {
  max_message_length?: number;
  max_subscriptions?: number;
  max_filters?: number;
  max_limit?: number;
  max_subid_length?: number;
  max_event_tags?: number;
  max_content_length?: number;
  auth_required?: boolean;
  restricted_writes?: boolean;
  [key: string]: unknown;
}

export interface RelayInformation {
  name: string;
  description?: string;
  pubkey: string;
  supported_nips: number[];
  software?: string;
  version?: string;
  limitation: RelayLimitation;
  mesh?: MeshInfo;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optString(o: Obj, key: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new Error(`relay information: ${key} must be a string`);
  return v;
}

function parseMesh(v: unknown): MeshInfo {
  if (!isObj(v)) throw new Error("relay information: mesh must be an object");
  if (typeof v.id !== "string" || v.id === "") {
    throw new Error("relay information: mesh.id must be a non-empty string");
  }
  if (!Array.isArray(v.rendezvous) || !v.rendezvous.every((a) => typeof a === "string")) {
    throw new Error("relay information: mesh.rendezvous must be an array of multiaddr strings");
  }
  if (typeof v.admission_url !== "string") {
    throw new Error("relay information: mesh.admission_url must be a string");
  }
  try {
    new URL(v.admission_url);
  } catch {
    throw new Error(`relay information: mesh.admission_url ${v.admission_url} is not a URL`);
  }
  if (v.status_kind !== 30621) throw new Error("relay information: mesh.status_kind must be 30621");
  return {
    id: v.id,
    rendezvous: [...v.rendezvous],
    admission_url: v.admission_url,
    status_kind: 30621,
  };
}

/** Parses a NIP-11 document; throws naming the bad field. `mesh` is undefined when absent. */
export function parseRelayInformation(json: unknown): RelayInformation {
  if (!isObj(json)) throw new Error("relay information is not a JSON object");
  if (!isHex64(json.pubkey)) {
    throw new Error("relay information: pubkey must be the relay's 64-hex key");
  }
  const nips = json.supported_nips ?? [];
  if (!Array.isArray(nips) || !nips.every((n) => Number.isSafeInteger(n))) {
    throw new Error("relay information: supported_nips must be an array of integers");
  }
  const limitation = json.limitation ?? {};
  if (!isObj(limitation)) throw new Error("relay information: limitation must be an object");
  const info: RelayInformation = {
    name: optString(json, "name") ?? "",
    pubkey: json.pubkey,
    supported_nips: [...nips],
    limitation: { ...limitation },
  };
  const description = optString(json, "description");
  const software = optString(json, "software");
  const version = optString(json, "version");
  if (description !== undefined) info.description = description;
  if (software !== undefined) info.software = software;
  if (version !== undefined) info.version = version;
  if (json.mesh !== undefined) info.mesh = parseMesh(json.mesh);
  return info;
}

/** The mesh a node may join, or an error saying why it must not start (fail closed). */
export function requireMesh(info: RelayInformation): MeshInfo {
  if (info.mesh === undefined) {
    throw new Error(
      "the relay advertises no mesh object in its NIP-11 document; refusing to start",
    );
  }
  if (info.mesh.rendezvous.length === 0) {
    throw new Error("the relay's mesh has no rendezvous address; refusing to start");
  }
  return info.mesh;
}
