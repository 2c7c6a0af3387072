/** Event kinds Grove's relay and nodes speak, and the shape of a Nostr event (NIP-01). */

export const KIND = {
  DELETION: 5,
  MEMBERSHIP_LIST: 13534,
  CLIENT_AUTH: 22242,
  SERVE_REPORT: 24620,
  TICKET: 24625,
  HTTP_AUTH: 27235,
  MESH_STATUS: 30621,
} as const;

/** The `d` tag of the relay's one addressable mesh status event. */
export const MESH_STATUS_D = "relay-mesh";

export type NostrEvent = {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
};
