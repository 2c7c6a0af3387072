/**
 * The admission part of a mesh role (docs/protocol.md#admission): the kept ticket, or why the
 * relay denied this node. A node the relay must admit (a serving one) fails to start when denied;
 * a client node starts anyway, answers mesh_denied, and asks again on a schedule (30 s, 60 s,
 * 2 min, then every 5 min) so its owner can make it a member without a restart; once admitted, it
 * joins the mesh through the role's `join`.
 *
 * A removed member hears nothing from the relay (no list, no renewal for minutes), but its peers
 * hang up on it. So a failed call asks the relay again, at most every 5 s: a 403 then means this
 * node was removed, and it is denied from then on (docs/protocol.md#revocation).
 */
import { type Logger, type NostrEvent, silentLogger, type Startable } from "../protocol/mod.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import { MESH_DENIED_MESSAGE, ServiceError } from "./service.ts";
import {
  type DenialCause,
  keepTicket,
  requestTicket,
  type TicketKeeper,
  type TicketRequest,
} from "./ticket-keeper.ts";

export interface AdmissionInit {
  /** Where and as whom to ask: the admission URL, this node, the relay's key and mesh id. */
  ask: TicketRequest;
  /** A serving node must be admitted to start; a client node starts denied and asks again. */
  required: boolean;
  /** Waits before each new ask of a denied node; the last repeats. */
  retryMs?: number[];
  /** Least time between two asks after failed calls. */
  recheckMs?: number;
  log?: Logger;
}

export interface AdmissionComponents {
  /** Joins the mesh once a denied node is admitted; a rejection drops the ticket, to ask again. */
  join(): Promise<void>;
  keepTicket?: typeof keepTicket;
  requestTicket?: typeof requestTicket;
  clock?: Clock;
}

/** Whether this node may use the mesh; otherwise why not (denied, or still waiting). */
export type Admitted = true | { denied: boolean; reason: string };

export interface Admission extends Startable {
  /** Asks the relay once; throws mesh_denied for a node that must be admitted to start. */
  start(): Promise<void>;
  admitted(): Admitted;
  /** The live ticket, which the libp2p node shows its peers. */
  ticket(): NostrEvent | undefined;
  /** A call to a peer failed: ask the relay whether this node is still a member. */
  recheck(): void;
}

const ADMISSION_RETRY_MS = [30_000, 60_000, 120_000, 300_000];
const RECHECK_MS = 5000;

export function createAdmission(init: AdmissionInit, components: AdmissionComponents): Admission {
  const log = init.log ?? silentLogger;
  const clock = components.clock ?? systemClock;
  const keep = components.keepTicket ?? keepTicket;
  const request = components.requestTicket ?? requestTicket;
  const retryWaits = init.retryMs ?? ADMISSION_RETRY_MS;
  if (retryWaits.length === 0) throw new Error("admission retryMs needs at least one wait");
  const recheckMs = init.recheckMs ?? RECHECK_MS;
  const ask = { ...init.ask, log };

  let keeper: TicketKeeper | undefined;
  /** Why the relay denied this node at start or at its latest ask; cleared once it joined. */
  let denial: string | undefined;
  /** Why the relay refused a recheck after a failed call (this member was removed). */
  let revoked: string | undefined;
  let lastCheck = -Infinity;
  let retries = 0;
  let retryTimer: Timer | undefined;
  let stopped = false;

  /** A ticket keeper, or why the relay denied this node (other failures throw). */
  async function admit(): Promise<TicketKeeper | string> {
    try {
      const k = await keep(ask);
      const refused = k.denied();
      if (refused === undefined) return k;
      k.stop();
      return refused;
    } catch (err) {
      const reason = denialOf(err);
      if (reason === undefined) throw err;
      return reason;
    }
  }

  function scheduleRetry(): void {
    const wait = retryWaits[Math.min(retries++, retryWaits.length - 1)];
    log.warn(`${MESH_DENIED_MESSAGE} (${denial}); asking the relay again in ${wait} ms`);
    retryTimer = clock.setTimeout(() => void retry(), wait);
  }

  async function retry(): Promise<void> {
    retryTimer = undefined;
    let outcome: TicketKeeper | string;
    try {
      outcome = await admit();
    } catch (err) {
      outcome = `the relay could not be asked: ${(err as Error).message}`;
    }
    if (stopped) {
      if (typeof outcome !== "string") outcome.stop();
      return;
    }
    if (typeof outcome === "string") {
      denial = outcome;
      return scheduleRetry();
    }
    keeper = outcome;
    try {
      await components.join();
      denial = undefined;
      log.info("the relay admitted this node; it now uses the mesh");
    } catch (err) {
      log.warn(`joining the mesh after admission failed: ${(err as Error).message}`);
      keeper.stop();
      keeper = undefined;
      if (!stopped) scheduleRetry();
    }
  }

  return {
    name: "admission",
    async start() {
      const first = await admit();
      if (typeof first !== "string") {
        keeper = first;
        return;
      }
      denial = first;
      if (init.required) {
        throw new ServiceError("mesh_denied", `${MESH_DENIED_MESSAGE} (${denial})`);
      }
      scheduleRetry();
    },
    admitted() {
      const reason = denial ?? keeper?.denied() ?? revoked;
      if (reason !== undefined) return { denied: true, reason };
      if (!keeper?.current()) return { denied: false, reason: "waiting for a mesh ticket" };
      return true;
    },
    ticket: () => keeper?.current(),
    recheck() {
      if (denial !== undefined || clock.now() - lastCheck < recheckMs) return;
      lastCheck = clock.now();
      request(ask).then(() => {
        revoked = undefined;
      }, (err) => {
        const reason = denialOf(err);
        if (reason === undefined) return;
        revoked = reason;
        log.warn(`the relay no longer admits this node: ${revoked}`);
      });
    },
    stop() {
      stopped = true;
      clock.clearTimeout(retryTimer);
      keeper?.stop();
    },
  };
}

/** The relay's own words for a mesh_denied refusal; undefined for any other failure. */
function denialOf(err: unknown): string | undefined {
  if (!(err instanceof ServiceError && err.code === "mesh_denied")) return undefined;
  const cause = err.cause as DenialCause | undefined;
  return cause ? `${cause.code}: ${cause.message}` : err.message;
}
