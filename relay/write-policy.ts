// Who may publish what (docs/protocol.md#writes). Decisions, in order:
// - kind 22242 belongs in AUTH, never in EVENT;
// - tickets (24625) are issued over HTTP and never stored or relayed: `blocked:`;
// - the mesh status (30621) and the membership list (13534) come from the relay only: `blocked:`;
// - every other write needs a NIP-42-authenticated connection whose pubkey is a member, and an
//   author who is a member (`auth-required:` / `restricted:`); `--open` lifts both;
// - NIP-70 protected events (a `["-"]` tag) only from a connection authenticated as the author;
// - serve reports (24620) are handed to the mesh status, whose complaint refuses the event.
import { KIND, type NostrEvent } from "../protocol/mod.ts";

export interface WritePolicy {
  /** The OK-false message (with a NIP-01 prefix) refusing ev, or undefined to accept it. */
  check(ev: NostrEvent, authed: string | undefined): string | undefined;
  /**
   * The refusal that needs no signature check: by kind, or because the connection is no
   * member's. Asked before verifying, so a stranger's EVENTs cost no signature check. Pure.
   */
  precheck(ev: NostrEvent, authed: string | undefined): string | undefined;
}

export interface WritePolicyInit {
  relayPubkey: string;
  open: boolean;
  isMember(pubkey: string): boolean;
  /** The mesh status' fold of a serve report; returns its complaint, if any. */
  meshReport?: (ev: NostrEvent) => string | undefined;
}

const PREFIXES = ["invalid:", "blocked:", "restricted:", "auth-required:", "error:", "pow:"];

export function createWritePolicy(init: WritePolicyInit): WritePolicy {
  return {
    precheck(ev, authed) {
      return kindRule(ev, init.relayPubkey) ?? connectionRule(authed, init);
    },
    check(ev, authed) {
      const refusal = kindRule(ev, init.relayPubkey) ?? authorRule(ev, authed, init) ??
        protectedRule(ev, authed);
      if (refusal !== undefined) return refusal;
      if (ev.kind === KIND.SERVE_REPORT) {
        if (!init.meshReport) return "error: this relay runs no mesh status";
        const complaint = safeReport(init.meshReport, ev);
        if (complaint !== undefined) return withPrefix(complaint);
      }
      return undefined;
    },
  };
}

function kindRule(ev: NostrEvent, relayPubkey: string): string | undefined {
  switch (ev.kind) {
    case KIND.CLIENT_AUTH:
      return "invalid: kind 22242 authenticates a connection; send it in an AUTH message";
    case KIND.TICKET:
      return "blocked: tickets (kind 24625) come from the admission endpoint and are never relayed";
    case KIND.MESH_STATUS:
      if (ev.pubkey !== relayPubkey) return "blocked: only the relay publishes kind 30621";
      return undefined;
    case KIND.MEMBERSHIP_LIST:
      if (ev.pubkey !== relayPubkey) return "blocked: only the relay publishes kind 13534";
      return undefined;
  }
  return undefined;
}

function authorRule(
  ev: NostrEvent,
  authed: string | undefined,
  init: WritePolicyInit,
): string | undefined {
  const refusal = connectionRule(authed, init);
  if (refusal !== undefined || init.open) return refusal;
  if (!init.isMember(ev.pubkey)) {
    return `restricted: the author ${short(ev.pubkey)} is not a member of this relay`;
  }
  return undefined;
}

/** Whether this connection may write at all, whatever the event. */
function connectionRule(authed: string | undefined, init: WritePolicyInit): string | undefined {
  if (init.open) return undefined;
  if (authed === undefined) {
    return "auth-required: this relay accepts events from authenticated members only";
  }
  if (!init.isMember(authed)) return `restricted: ${short(authed)} is not a member of this relay`;
  return undefined;
}

function protectedRule(ev: NostrEvent, authed: string | undefined): string | undefined {
  const isProtected = ev.tags.some((t) => t.length >= 1 && t[0] === "-");
  if (isProtected && authed !== ev.pubkey) {
    return "auth-required: this event may only be published by its author";
  }
  return undefined;
}

function safeReport(report: (ev: NostrEvent) => string | undefined, ev: NostrEvent) {
  try {
    return report(ev);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function withPrefix(message: string): string {
  return PREFIXES.some((p) => message.startsWith(p)) ? message : `invalid: ${message}`;
}

function short(pubkey: string): string {
  return `${pubkey.slice(0, 8)}…`;
}
