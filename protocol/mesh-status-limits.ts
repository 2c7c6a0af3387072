/**
 * How big the relay's mesh status may grow (docs/protocol.md#kind-30621-mesh-status): every
 * member reads every 30621 event, so each one is bounded, and so is their number.
 */
import { MESH_STATUS_D } from "./kinds.ts";

/** The most bytes one signed 30621 event (index or page) takes as JSON. */
export const MESH_STATUS_EVENT_MAX_BYTES = 64 * 1024;

/** Page events after the index; past what they hold, the relay lists a fair share per model. */
export const MESH_STATUS_MAX_PAGES = 32;

/** The `d` tag of page `n` (1-based); the index is `relay-mesh` itself. */
export function meshStatusPageD(n: number): string {
  return `${MESH_STATUS_D}:${n}`;
}
