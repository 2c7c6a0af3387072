/**
 * The relay-facing side of a node (docs/protocol.md#the-relay): the NIP-11 document, read
 * fail-closed, and one NIP-42-authenticated connection that follows the relay-signed mesh status
 * (30621) and membership list (13534), publishes the node's events, and reconnects with bounded
 * backoff.
 *
 * nostr-tools' AbstractRelay carries the NIP-01 traffic. Its own reconnect is off: after a drop
 * it would re-send the REQ before the relay's new AUTH challenge is answered, and the relay
 * would refuse it. Each connection here is a fresh relay object: connect, answer AUTH, then REQ.
 */
import { AbstractRelay } from "nostr-tools/abstract-relay";
import { finalizeEvent, verifyEvent } from "nostr-tools/pure";
import {
  KIND,
  type Logger,
  MESH_STATUS_D,
  type MeshInfo,
  type MeshStatus,
  type NostrEvent,
  parseRelayInformation,
  pubkeyFromPeerId,
  type RelayInformation,
  requireMesh,
  silentLogger,
} from "../protocol/mod.ts";
import type { Identity } from "./node-identity.ts";
import { createRelayState } from "./relay-state.ts";

/** The node must not start: the relay offers no usable mesh, or cannot be read. */
export class MeshStartError extends Error {
  override name = "MeshStartError";
}

export interface RelayInfoResult {
  info: RelayInformation;
  /** Rendezvous addresses kept: only those whose /p2p/ peer id is the relay's own key. */
  mesh: MeshInfo;
  relayPubkey: string;
}

/** ws(s)://host/path → http(s)://host/path, where NIP-11 is served. */
export function relayHttpUrl(relayUrl: string): string {
  let u: URL;
  try {
    u = new URL(relayUrl);
  } catch {
    throw new MeshStartError(`relay URL ${JSON.stringify(relayUrl)} is not a URL`);
  }
  const scheme = { "ws:": "http:", "wss:": "https:", "http:": "http:", "https:": "https:" }[
    u.protocol
  ];
  if (scheme === undefined) {
    throw new MeshStartError(`relay URL ${relayUrl} must start with ws://, wss://, http(s)://`);
  }
  return `${scheme}//${u.host}${u.pathname}`;
}

export async function fetchRelayInfo(
  relayUrl: string,
  opts: { fetch?: typeof fetch; timeoutMs?: number; log?: Logger } = {},
): Promise<RelayInfoResult> {
  const url = relayHttpUrl(relayUrl);
  const refuse = (why: string) =>
    new MeshStartError(`relay ${relayUrl}: ${why}; this node refuses to start`);
  let json: unknown;
  try {
    const res = await (opts.fetch ?? fetch)(url, {
      headers: { accept: "application/nostr+json" },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw refuse(`its NIP-11 document answered HTTP ${res.status}`);
    }
    json = await res.json().catch(() => {
      throw refuse("its NIP-11 document is not JSON");
    });
  } catch (err) {
    if (err instanceof MeshStartError) throw err;
    throw refuse(`cannot fetch its NIP-11 document from ${url} (${(err as Error).message})`);
  }
  let info: RelayInformation, mesh: MeshInfo;
  try {
    info = parseRelayInformation(json);
    mesh = requireMesh(info);
  } catch (err) {
    throw refuse((err as Error).message.replace(/; refusing to start$/, ""));
  }
  // A rendezvous of another key would be a peer the relay does not vouch for.
  const rendezvous = mesh.rendezvous.filter((addr) => {
    const peer = /\/p2p\/([^/]+)$/.exec(addr)?.[1];
    const ok = peer !== undefined && pubkeyFromPeerId(peer) === info.pubkey;
    if (!ok) opts.log?.warn(`ignoring rendezvous address ${addr}: not the relay's own peer id`);
    return ok;
  });
  if (rendezvous.length === 0) {
    throw refuse("none of the mesh's rendezvous addresses names the relay's own peer id");
  }
  return { info, mesh: { ...mesh, rendezvous }, relayPubkey: info.pubkey };
}

export interface RelayClient {
  /** Resolves on the relay's OK true; throws an Error whose message is the relay's on OK false. */
  publish(ev: NostrEvent): Promise<void>;
  /** Called with each newer mesh status, and at once with the latest one when there is one. */
  onMeshStatus(fn: (s: MeshStatus) => void): () => void;
  /** Called with each membership list (NIP-43, 13534), and at once with the latest. */
  onMembers(fn: (pubkeys: Set<string>) => void): () => void;
  /** Called when the relay closes the subscription with `restricted:`/`auth-required:`. */
  onDenied(fn: (reason: string) => void): () => void;
  meshStatus(): MeshStatus | undefined;
  members(): Set<string> | undefined;
  /** The latest membership list's created_at: the relay's clock, which tickets also carry. */
  membersListedAt(): number;
  /** The relay's refusal of the latest subscription (this key is no member), if any. */
  denied(): string | undefined;
  connected(): boolean;
  close(): Promise<void>;
}

export interface ConnectRelayOptions {
  url: string;
  identity: Identity;
  relayPubkey: string;
  log?: Logger;
  /** Bound on connect, the AUTH exchange and the first EOSE, each. */
  timeoutMs?: number;
  /** Waits between reconnect attempts; the last one repeats. */
  backoffMs?: number[];
}

const DEFAULT_BACKOFF = [250, 500, 1000, 2000, 5000, 10_000];
const DENIAL = /^(restricted|auth-required):/;

/** Connects and authenticates; throws when the first connection fails. Reconnects after that. */
export async function connectRelay(opts: ConnectRelayOptions): Promise<RelayClient> {
  const log = opts.log ?? silentLogger;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const backoff = opts.backoffMs ?? DEFAULT_BACKOFF;
  const state = createRelayState({ relayPubkey: opts.relayPubkey, log });
  let closed = false;
  let current: AbstractRelay | undefined;
  let ready = deferred<AbstractRelay>();
  let wakeSleep: (() => void) | undefined;

  /** One connection: open, authenticate, subscribe; resolves at EOSE or a refusal. */
  async function openOnce(lost: () => void): Promise<AbstractRelay> {
    // verifyEvent runs on each freshly parsed message, so its cached verdict is sound here.
    const relay = new AbstractRelay(opts.url, { verifyEvent: (e) => verifyEvent(e) });
    relay.publishTimeout = timeoutMs;
    const challenged = deferred<void>();
    const onmessage = relay._onmessage.bind(relay);
    relay._onmessage = (msg: MessageEvent) => {
      onmessage(msg);
      if (typeof msg.data === "string" && /^\s*\[\s*"AUTH"/.test(msg.data)) challenged.resolve();
    };
    relay.onnotice = (msg) => log.warn(`relay notice: ${msg}`);
    relay.onclose = lost;
    try {
      await relay.connect({ timeout: timeoutMs }).catch((e) => {
        throw new Error(`cannot connect to the relay at ${opts.url}: ${String(e?.message ?? e)}`);
      });
      await within(challenged.promise, timeoutMs, "the relay sent no NIP-42 AUTH challenge");
      await within(
        relay.auth((t) => Promise.resolve(finalizeEvent(t, opts.identity.secretKey))),
        timeoutMs,
        "the relay did not answer AUTH",
      ).catch((e) => {
        throw new Error(`the relay refused NIP-42 AUTH: ${(e as Error).message}`);
      });
      await within(subscribe(relay), timeoutMs, "the relay sent no EOSE for the mesh status");
      return relay;
    } catch (err) {
      relay.onclose = null;
      relay.close();
      throw err;
    }
  }

  function subscribe(relay: AbstractRelay): Promise<void> {
    const settled = deferred<void>();
    relay.subscribe([
      { kinds: [KIND.MESH_STATUS], authors: [opts.relayPubkey], "#d": [MESH_STATUS_D], limit: 1 },
      { kinds: [KIND.MEMBERSHIP_LIST], authors: [opts.relayPubkey], limit: 1 },
    ], {
      onevent: (ev) => state.receive(ev as NostrEvent),
      oneose: () => {
        state.accepted();
        settled.resolve();
      },
      onclose: (reason) => {
        settled.resolve();
        if (DENIAL.test(reason)) {
          state.refused(reason);
        } else if (/^[a-z-]+:/.test(reason) && !closed) {
          log.warn(`the relay closed the mesh subscription (${reason}); reconnecting`);
          relay.close(); // the run loop reconnects and subscribes afresh
        }
      },
      eoseTimeout: timeoutMs * 2, // our own `within` reports the timeout first
    });
    return settled.promise;
  }

  async function run(first: ReturnType<typeof deferred<void>>): Promise<void> {
    let attempt = 0;
    while (!closed) {
      const lost = deferred<void>();
      try {
        const relay = await openOnce(() => lost.resolve());
        if (closed) {
          relay.close();
          break;
        }
        current = relay;
        attempt = 0;
        ready.resolve(relay);
        log.info(`connected to the relay ${opts.url} as ${opts.identity.npub}`);
        first.resolve();
        await lost.promise;
        current = undefined;
        ready = deferred<AbstractRelay>();
        if (closed) break;
        log.warn(`lost the relay connection ${opts.url}`);
      } catch (err) {
        if (!first.settled) {
          first.reject(err as Error);
          return;
        }
        log.warn(`relay reconnect failed: ${(err as Error).message}`);
      }
      const wait = backoff[Math.min(attempt++, backoff.length - 1)];
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wakeSleep = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeSleep = undefined;
    }
  }

  const first = deferred<void>();
  const loop = run(first);
  await first.promise;

  return {
    async publish(ev) {
      if (closed) throw new Error("the relay client is closed");
      const relay = await within(ready.promise, timeoutMs * 2, `no connection to ${opts.url}`);
      try {
        await relay.publish(ev);
      } catch (err) {
        throw new Error((err as Error).message || String(err));
      }
    },
    onMeshStatus: state.onMeshStatus,
    onMembers: state.onMembers,
    onDenied: state.onDenied,
    meshStatus: state.meshStatus,
    members: state.members,
    membersListedAt: state.membersListedAt,
    denied: state.denied,
    connected: () => current?.connected === true,
    async close() {
      if (closed) return;
      closed = true;
      current?.close();
      wakeSleep?.();
      ready.reject(new Error("the relay client is closed"));
      await loop;
    },
  };
}

function deferred<T>() {
  let resolve!: (v: T) => void, reject!: (e: Error) => void;
  const d = {
    settled: false,
    promise: new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: (v: T) => {
      d.settled = true;
      resolve(v);
    },
    reject: (e: Error) => {
      d.settled = true;
      reject(e);
    },
  };
  d.promise.catch(() => {}); // a rejection nobody awaits (ready after close) is no crash
  return d;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
