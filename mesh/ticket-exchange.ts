/**
 * `/grove/ticket/1` (docs/protocol.md#ticket-exchange): on every connection to a peer other than
 * the relay, each side opens a stream, sends its current ticket as one frame and reads the verdict
 * `{ok, reason?}`. Each side checks the other's ticket against the peer the handshake
 * authenticated, and that its member is still a member. A missing, invalid or late ticket closes
 * the connection, so nothing is served to a stranger; the gate then admits a stream only from a
 * verified, unexpired member.
 */
import type { Connection, Libp2p, Stream } from "@libp2p/interface";
import { type Logger, type NostrEvent, pubkeyFromPeerId, verifyTicket } from "../protocol/mod.ts";
import {
  deadline,
  errorText,
  patientTimer,
  readOneFrame,
  shortPeer,
  writeFrame,
} from "./stream-frames.ts";

const TICKET_PROTOCOL = "/grove/ticket/1";

export interface TicketGateInit {
  relayPubkey: string;
  meshId: string;
  /** The relay's own libp2p peer: it holds no ticket and is never asked for one. */
  isRelay: (peerId: string) => boolean;
  ticket: () => NostrEvent | undefined;
  log: Logger;
  /** How long both halves of an exchange may take before the connection is closed. */
  timeoutMs?: number;
  /** UNIX seconds. */
  now?: () => number;
  /** The remote of `conn` showed a valid ticket of a current member. */
  onVerified?: (conn: Connection) => void;
}

export interface AdmittedPeer {
  peerId: string;
  pubkey: string;
}

export interface TicketGate {
  /** Registers the handler and starts exchanging on new connections. */
  attach(node: Libp2p): Promise<void>;
  /** Resolves once both sides accepted each other's ticket on `conn`; rejects with the reason. */
  ready(conn: Connection): Promise<void>;
  /** The remote of an inbound stream if it may be served; else the reason it may not. */
  admit(conn: Connection): Promise<AdmittedPeer | string>;
  /**
   * Closes connections of peers whose member is not in `pubkeys`, now. `listedAt` is the list's
   * own `created_at` (kind 13534, relay-signed), so it compares with tickets' relay-signed
   * `created_at` whatever this node's clock says. Without it the list counts as newer than every
   * ticket: everyone it leaves out is cut.
   */
  setMembers(pubkeys: Set<string>, listedAt?: number): void;
  /** Drops peers whose ticket ran out; re-sends this node's ticket after it was renewed. */
  sweep(): void;
}

type Outcome = "pending" | "ok" | "failed";

interface Half {
  state: Outcome;
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

interface ConnState {
  /** We checked the remote's ticket. */
  verified: Half;
  /** The remote accepted ours. */
  accepted: Half;
  sentTicketId?: string;
  sending: boolean;
  /** Cancels the exchange's limit. */
  timer?: () => void;
}

function half(): Half {
  let resolve!: () => void, reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => [resolve, reject] = [res, rej]);
  promise.catch(() => {}); // a refusal nobody waits for is logged, not an unhandled rejection
  const h: Half = {
    state: "pending",
    promise,
    resolve: () => h.state === "pending" && (h.state = "ok", resolve()),
    reject: (err) => h.state === "pending" && (h.state = "failed", reject(err)),
  };
  return h;
}

/**
 * Why `member` may no longer be served, or undefined. A member missing from the latest list has
 * left the mesh, unless its ticket is newer than that list: a member added a moment ago may hold
 * a ticket before any list names it. Both times are the relay's (the ticket's and the list's
 * created_at, each signed by the relay), never this node's clock, which may be minutes off: a
 * removal must not wait for clocks to agree.
 */
export function leftTheMesh(
  member: string,
  ticketIssuedAt: number,
  list: { members: ReadonlySet<string>; listedAt: number },
): string | undefined {
  return !list.members.has(member) && ticketIssuedAt <= list.listedAt
    ? `member ${member.slice(0, 12)}… left the mesh`
    : undefined;
}

export function createTicketGate(init: TicketGateInit): TicketGate {
  const timeoutMs = init.timeoutMs ?? 5000;
  const now = init.now ?? (() => Math.floor(Date.now() / 1000));
  const log = init.log;
  const states = new WeakMap<Connection, ConnState>();
  /** Per peer: the member its newest verified ticket names and when that ticket runs out. */
  const peers = new Map<string, { member: string; expiresAt: number; issuedAt: number }>();
  let members: Set<string> | undefined;
  let listedAt = 0; // the relay's created_at of the latest member list
  let node: Libp2p | undefined;

  function stateOf(conn: Connection): ConnState {
    let s = states.get(conn);
    if (!s) {
      s = { verified: half(), accepted: half(), sending: false };
      states.set(conn, s);
    }
    return s;
  }

  function fail(conn: Connection, reason: string) {
    const s = stateOf(conn);
    s.timer?.();
    const err = new Error(reason);
    s.verified.reject(err);
    s.accepted.reject(err);
    if (conn.status !== "open") return;
    log.warn(`closed the connection to peer ${shortPeer(conn.remotePeer.toString())}: ${reason}`);
    conn.abort(err);
  }

  function memberProblem(member: string, issuedAt: number): string | undefined {
    return members && leftTheMesh(member, issuedAt, { members, listedAt });
  }

  async function sendTicket(conn: Connection, s: ConnState) {
    const ticket = init.ticket();
    if (!ticket) return fail(conn, "this node holds no ticket to show");
    s.sending = true;
    s.sentTicketId = ticket.id;
    const limit = deadline(timeoutMs);
    try {
      const stream = await conn.newStream(TICKET_PROTOCOL, {
        runOnLimitedConnection: true,
        signal: limit.signal,
      });
      await writeFrame(stream, { ticket });
      const reply = await readOneFrame(stream, timeoutMs) as { ok?: unknown; reason?: unknown };
      await stream.close({ signal: limit.signal }).catch(() => {});
      if (reply?.ok === true) s.accepted.resolve();
      else {fail(
          conn,
          `the peer refused this node's ticket: ${String(reply?.reason ?? "no reason")}`,
        );}
    } catch (err) {
      fail(conn, `ticket exchange failed: ${errorText(err)}`);
    } finally {
      limit.clear();
      s.sending = false;
    }
  }

  async function onTicketStream(stream: Stream, conn: Connection) {
    const remote = conn.remotePeer.toString();
    if (init.isRelay(remote)) return stream.abort(new Error("the relay holds no ticket"));
    const s = stateOf(conn);
    let reason: string | undefined;
    let frame: { ticket?: unknown } | undefined;
    try {
      frame = await readOneFrame(stream, timeoutMs) as { ticket?: unknown };
    } catch (err) {
      reason = `no ticket arrived: ${errorText(err)}`;
    }
    if (!reason) {
      const check = verifyTicket(frame?.ticket, {
        relayPubkey: init.relayPubkey,
        meshId: init.meshId,
        peerId: remote,
        now: now(),
      });
      const issuedAt = (frame?.ticket as { created_at?: number } | undefined)?.created_at ?? 0;
      reason = check.ok ? memberProblem(check.member, issuedAt) : check.reason;
      if (check.ok && !reason) {
        peers.set(remote, { member: check.member, expiresAt: check.expiresAt, issuedAt });
      }
    }
    try {
      await writeFrame(stream, reason ? { ok: false, reason } : { ok: true });
      await stream.close({ signal: AbortSignal.timeout(500) });
    } catch { /* the verdict is best effort; the connection state below is what counts */ }
    if (reason) return fail(conn, `peer ${shortPeer(remote)} showed no valid ticket: ${reason}`);
    s.verified.resolve();
    init.onVerified?.(conn);
    if (s.accepted.state === "ok") s.timer?.();
  }

  function onConnectionOpen(conn: Connection) {
    if (init.isRelay(conn.remotePeer.toString())) return;
    const s = stateOf(conn);
    // A patient timer: on a starved machine the peer's ticket waits unread, it is not missing.
    s.timer = patientTimer(timeoutMs, () => {
      if (s.verified.state !== "ok" || s.accepted.state !== "ok") {
        fail(conn, `no ticket exchange within ${timeoutMs} ms`);
      }
    });
    void sendTicket(conn, s);
  }

  function onConnectionClose(conn: Connection) {
    states.get(conn)?.timer?.();
    const remote = conn.remotePeer;
    if (node && node.getConnections(remote).length === 0) peers.delete(remote.toString());
  }

  return {
    async attach(n) {
      node = n;
      await n.handle(TICKET_PROTOCOL, onTicketStream, { runOnLimitedConnection: true });
      n.addEventListener("connection:open", (evt) => onConnectionOpen(evt.detail));
      n.addEventListener("connection:close", (evt) => onConnectionClose(evt.detail));
    },

    async ready(conn) {
      if (init.isRelay(conn.remotePeer.toString())) throw new Error("that peer is the relay");
      const s = stateOf(conn);
      await Promise.all([s.verified.promise, s.accepted.promise]);
    },

    async admit(conn) {
      const peerId = conn.remotePeer.toString();
      if (init.isRelay(peerId)) return "the relay is not a member";
      try {
        await stateOf(conn).verified.promise;
      } catch (err) {
        return errorText(err);
      }
      const v = peers.get(peerId);
      if (!v) return "no verified ticket";
      if (v.expiresAt <= now()) return "its ticket expired";
      return memberProblem(v.member, v.issuedAt) ?? { peerId, pubkey: v.member };
    },

    setMembers(pubkeys, at = Number.POSITIVE_INFINITY) {
      members = new Set(pubkeys);
      listedAt = at;
      for (const conn of node?.getConnections() ?? []) {
        const peerId = conn.remotePeer.toString();
        if (init.isRelay(peerId)) continue;
        const pubkey = peers.get(peerId)?.member ?? pubkeyFromPeerId(peerId) ?? "";
        if (!memberProblem(pubkey, peers.get(peerId)?.issuedAt ?? 0)) continue;
        peers.delete(peerId);
        fail(conn, `member ${pubkey.slice(0, 12)}… is no longer a member`);
      }
    },

    sweep() {
      const t = now();
      const current = init.ticket();
      for (const conn of node?.getConnections() ?? []) {
        const peerId = conn.remotePeer.toString();
        if (init.isRelay(peerId) || conn.status !== "open") continue;
        const v = peers.get(peerId);
        if (v && v.expiresAt <= t) {
          peers.delete(peerId);
          fail(conn, "its ticket expired and no renewed one came");
          continue;
        }
        const s = states.get(conn);
        if (!s || s.accepted.state !== "ok" || s.sending) continue;
        if (current && current.id !== s.sentTicketId) void sendTicket(conn, s);
      }
    },
  };
}
