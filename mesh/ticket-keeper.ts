/**
 * Mesh admission from the node's side (docs/protocol.md#admission): POST the admission URL with
 * NIP-98 auth for a relay-signed ticket, check the ticket locally before trusting it, and keep one
 * live by renewing it before it expires. A refusal (403) is `mesh_denied`; once a renewal is
 * refused the member was removed, and the keeper says so and stops.
 */
import {
  type Logger,
  nip98Header,
  type NostrEvent,
  silentLogger,
  verifyTicket,
} from "../protocol/mod.ts";
import { MESH_DENIED_MESSAGE, ServiceError } from "./service.ts";
import type { Identity } from "./node-identity.ts";
import { listeners } from "./listeners.ts";

export interface TicketRequest {
  admissionUrl: string;
  identity: Identity;
  /** The relay's key and mesh id (NIP-11): the ticket must be theirs. */
  relayPubkey: string;
  meshId: string;
  fetch?: typeof fetch;
  log?: Logger;
  /** UNIX seconds; tests pass a fake clock. */
  now?: () => number;
  timeoutMs?: number;
}

/** What a denial carries besides the fixed user-facing message: the relay's own words. */
export interface DenialCause {
  status: number;
  code: string;
  message: string;
}

/**
 * A verified ticket for this node's peer id. Throws ServiceError("mesh_denied") on 403 (the
 * relay's code and message in `cause` and the log), a plain Error naming the status and the
 * relay's message otherwise, and one naming the URL when the relay cannot be reached.
 */
export async function requestTicket(opts: TicketRequest): Promise<NostrEvent> {
  const now = opts.now ?? (() => Date.now() / 1000);
  const log = opts.log ?? silentLogger;
  const body = new TextEncoder().encode(JSON.stringify({ peerId: opts.identity.peerId }));
  const authorization = nip98Header(
    opts.identity.secretKey,
    { url: opts.admissionUrl, method: "POST", body },
    Math.floor(now()),
  );
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(opts.admissionUrl, {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new Error(
      `cannot reach the mesh admission endpoint ${opts.admissionUrl}: ${(err as Error).message}`,
    );
  }
  const text = await res.text().catch(() => "");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status === 200) {
    const ticket = (json as { ticket?: unknown } | undefined)?.ticket;
    const check = verifyTicket(ticket, {
      relayPubkey: opts.relayPubkey,
      meshId: opts.meshId,
      peerId: opts.identity.peerId,
      now: now(),
    });
    if (!check.ok) {
      throw new Error(`the relay's admission answer holds no valid ticket: ${check.reason}`);
    }
    return ticket as NostrEvent;
  }
  const cause = relayError(res.status, json, text);
  if (res.status === 403) {
    log.warn(`the relay denied mesh admission: ${cause.code}: ${cause.message}`, {
      status: 403,
      code: cause.code,
    });
    const err = new ServiceError("mesh_denied", MESH_DENIED_MESSAGE);
    err.cause = cause;
    throw err;
  }
  const what = res.status === 401 ? "refused this node's NIP-98 auth" : "failed";
  throw new Error(
    `mesh admission at ${opts.admissionUrl} ${what} (HTTP ${res.status} ${cause.code}): ` +
      cause.message,
  );
}

function relayError(status: number, json: unknown, text: string): DenialCause {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    status,
    code: typeof e?.code === "string" ? e.code : "unknown",
    message: typeof e?.message === "string" ? e.message : text.slice(0, 200) || "(no message)",
  };
}

export interface TicketKeeper {
  /** The live ticket; undefined once it expired unrenewed or the node was denied. */
  current(): NostrEvent | undefined;
  onChange(fn: (t: NostrEvent | undefined) => void): () => void;
  /** The relay's reason, once a renewal was refused (the member was removed). */
  denied(): string | undefined;
  stop(): void;
}

export interface KeepTicketOptions extends TicketRequest {
  /** Renew when this share of the ticket's lifetime has passed. */
  renewAtFraction?: number;
  /** Waits between failed renewals; the last one repeats. */
  retryMs?: number[];
}

const DEFAULT_RETRY = [1000, 2000, 5000, 10_000, 30_000];

function expiryOf(t: NostrEvent): number {
  return Number(t.tags.find((tag) => tag[0] === "expiration")?.[1]);
}

/** Gets the first ticket (throws as requestTicket does), then keeps one live. */
export async function keepTicket(opts: KeepTicketOptions): Promise<TicketKeeper> {
  const log = opts.log ?? silentLogger;
  const now = opts.now ?? (() => Date.now() / 1000);
  const fraction = opts.renewAtFraction ?? 0.7;
  if (!(fraction > 0 && fraction < 1)) throw new Error("renewAtFraction must be between 0 and 1");
  const retry = opts.retryMs ?? DEFAULT_RETRY;
  const changes = listeners<NostrEvent | undefined>("ticket", log);
  let ticket: NostrEvent | undefined = await requestTicket(opts);
  let denial: string | undefined;
  let stopped = false;
  let failures = 0;
  let renewTimer: ReturnType<typeof setTimeout> | undefined;
  let expiryTimer: ReturnType<typeof setTimeout> | undefined;

  const set = (t: NostrEvent | undefined) => {
    ticket = t;
    changes.emit(t);
  };

  function schedule(t: NostrEvent): void {
    const lifetime = expiryOf(t) - t.created_at;
    const dueMs = (t.created_at + fraction * lifetime - now()) * 1000;
    // A relay clock far ahead of ours must not turn renewal into a busy loop.
    renewTimer = setTimeout(renew, Math.max(dueMs, Math.min(1000, fraction * lifetime * 1000)));
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(() => {
      if (ticket !== t || stopped) return;
      log.warn("the mesh ticket expired before it could be renewed");
      set(undefined);
    }, Math.max(0, (expiryOf(t) - now()) * 1000));
  }

  async function renew(): Promise<void> {
    renewTimer = undefined;
    if (stopped) return;
    try {
      const t = await requestTicket(opts);
      if (stopped) return;
      failures = 0;
      set(t);
      schedule(t);
    } catch (err) {
      if (stopped) return;
      if (err instanceof ServiceError && err.code === "mesh_denied") {
        const cause = err.cause as DenialCause | undefined;
        denial = cause ? `${cause.code}: ${cause.message}` : err.message;
        log.error(`the relay refused to renew this node's mesh ticket: ${denial}`);
        clearTimeout(expiryTimer);
        set(undefined);
        return;
      }
      const wait = retry[Math.min(failures++, retry.length - 1)];
      log.warn(`mesh ticket renewal failed, retrying in ${wait} ms: ${(err as Error).message}`);
      renewTimer = setTimeout(renew, wait);
    }
  }

  schedule(ticket);
  return {
    current: () => ticket,
    onChange: (fn) => changes.add(fn),
    denied: () => denial,
    stop() {
      stopped = true;
      clearTimeout(renewTimer);
      clearTimeout(expiryTimer);
    },
  };
}
