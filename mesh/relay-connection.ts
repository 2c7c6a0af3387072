/**
 * The connection loop of a node's relay client (relay-client.ts): one NIP-42-authenticated
 * connection at a time, subscribed to the relay-signed mesh status (30621) and membership list
 * (13534), and after a drop a fresh one, with bounded backoff. What the subscription brings goes
 * to the relay state (relay-state.ts), which outlives each connection.
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
  meshStatusFilter,
  type NostrEvent,
  silentLogger,
  type Startable,
} from "../protocol/mod.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import type { Identity } from "./node-identity.ts";
import type { RelayState } from "./relay-state.ts";

export interface RelayConnectionInit {
  url: string;
  identity: Identity;
  relayPubkey: string;
  log?: Logger;
  /** Bound on connect, the AUTH exchange and the first EOSE, each. */
  timeoutMs?: number;
  /** Waits between reconnect attempts; the last one repeats. */
  backoffMs?: number[];
}

export interface RelayConnectionComponents {
  /** Told of each event, and of the relay's answer to each subscription. */
  state: Pick<RelayState, "receive" | "refused" | "accepted">;
  /** The backoff between connections and the bounds on each step run on it. */
  clock?: Clock;
}

export interface RelayConnection extends Startable {
  /** Connects, authenticates and subscribes; throws when this first connection fails. */
  start(): Promise<void>;
  /** Resolves on the relay's OK true; throws an Error whose message is the relay's on OK false. */
  publish(ev: NostrEvent): Promise<void>;
  connected(): boolean;
  /** Closes the connection and ends the loop. */
  stop(): Promise<void>;
}

// At most 4 s apart, so a restarted relay has every node back within ~4 s of its return (new
// requests must succeed within 10 s of a relay restart); each wait is jittered by ±25 % so that a
// relay's members do not all knock at once.
const DEFAULT_BACKOFF = [250, 500, 1000, 2000, 4000];
const DENIAL = /^(restricted|auth-required):/;

export function createRelayConnection(
  init: RelayConnectionInit,
  components: RelayConnectionComponents,
): RelayConnection {
  const log = init.log ?? silentLogger;
  const { state } = components;
  const clock = components.clock ?? systemClock;
  const timeoutMs = init.timeoutMs ?? 5000;
  const backoff = init.backoffMs ?? DEFAULT_BACKOFF;
  let closed = false;
  let current: AbstractRelay | undefined;
  let ready = deferred<AbstractRelay>();
  let wakeSleep: (() => void) | undefined;
  let loop: Promise<void> | undefined;

  /** One connection: open, authenticate, subscribe; resolves at EOSE or a refusal. */
  async function openOnce(lost: () => void): Promise<AbstractRelay> {
    // verifyEvent runs on each freshly parsed message, so its cached verdict is sound here.
    const relay = new AbstractRelay(init.url, { verifyEvent: (e) => verifyEvent(e) });
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
        throw new Error(`cannot connect to the relay at ${init.url}: ${String(e?.message ?? e)}`);
      });
      await within(clock, challenged.promise, timeoutMs, "the relay sent no NIP-42 AUTH challenge");
      await within(
        clock,
        relay.auth((t) => Promise.resolve(finalizeEvent(t, init.identity.secretKey))),
        timeoutMs,
        "the relay did not answer AUTH",
      ).catch((e) => {
        throw new Error(`the relay refused NIP-42 AUTH: ${(e as Error).message}`);
      });
      await within(
        clock,
        subscribe(relay),
        timeoutMs,
        "the relay sent no EOSE for the mesh status",
      );
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
      meshStatusFilter(init.relayPubkey), // the index and its pages (docs/protocol.md)
      { kinds: [KIND.MEMBERSHIP_LIST], authors: [init.relayPubkey], limit: 1 },
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
        log.info(`connected to the relay ${init.url} as ${init.identity.npub}`);
        first.resolve();
        await lost.promise;
        current = undefined;
        ready = deferred<AbstractRelay>();
        if (closed) break;
        log.warn(`lost the relay connection ${init.url}`);
      } catch (err) {
        if (!first.settled) {
          first.reject(err as Error);
          return;
        }
        log.warn(`relay reconnect failed: ${(err as Error).message}`);
      }
      const step = backoff[Math.min(attempt++, backoff.length - 1)];
      const wait = init.backoffMs ? step : step * (0.75 + Math.random() / 2);
      await new Promise<void>((resolve) => {
        const timer = clock.setTimeout(resolve, wait);
        wakeSleep = () => {
          clock.clearTimeout(timer);
          resolve();
        };
      });
      wakeSleep = undefined;
    }
  }

  return {
    name: "relay connection",
    async start() {
      const first = deferred<void>();
      loop = run(first);
      await first.promise;
    },
    async publish(ev) {
      if (closed) throw new Error("the relay client is closed");
      const relay = await within(
        clock,
        ready.promise,
        timeoutMs * 2,
        `no connection to ${init.url}`,
      );
      try {
        await relay.publish(ev);
      } catch (err) {
        throw new Error((err as Error).message || String(err));
      }
    },
    connected: () => current?.connected === true,
    async stop() {
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

function within<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clock.clearTimeout(timer));
}
