// A minimal NIP-01 WebSocket client for tests: every message the relay sends is kept in order,
// and `next` waits (bounded) for the first unread one that matches.
import { finalizeEvent } from "nostr-tools/pure";
import type { NostrEvent } from "../../protocol/mod.ts";

export interface TestClient {
  /** The NIP-42 challenge the relay sent on connect. */
  challenge: string;
  send(msg: unknown): void;
  /** The next unread message for which `match` holds (others before it are skipped). */
  next(match?: (msg: unknown[]) => boolean, timeoutMs?: number): Promise<unknown[]>;
  /** Authenticates as sk; resolves with the OK message. */
  auth(sk: Uint8Array, relayUrl: string): Promise<unknown[]>;
  /** Publishes ev; resolves with its OK message. */
  publish(ev: NostrEvent): Promise<unknown[]>;
  close(): Promise<void>;
  closed: Promise<CloseEvent>;
}

export async function connectTestClient(url: string): Promise<TestClient> {
  const ws = new WebSocket(url);
  const inbox: unknown[][] = [];
  let read = 0;
  let wake: (() => void) | undefined;
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  ws.onmessage = (e) => {
    inbox.push(JSON.parse(e.data));
    wake?.();
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`could not connect to ${url}`));
  });
  closed.then(() => wake?.());

  const next = async (match: (m: unknown[]) => boolean = () => true, timeoutMs = 3000) => {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      while (read < inbox.length) {
        const msg = inbox[read++];
        if (match(msg)) return msg;
      }
      const left = deadline - Date.now();
      if (left <= 0 || ws.readyState === WebSocket.CLOSED) {
        throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(inbox)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const challenge = (await next((m) => m[0] === "AUTH"))[1] as string;
  const send = (msg: unknown) => ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  const okFor = (id: string) => next((m) => m[0] === "OK" && m[1] === id);
  return {
    challenge,
    send,
    next,
    auth(sk, relayUrl) {
      const ev = finalizeEvent({
        kind: 22242,
        created_at: Math.floor(Date.now() / 1000),
        tags: [["relay", relayUrl], ["challenge", challenge]],
        content: "",
      }, sk);
      send(["AUTH", ev]);
      return okFor(ev.id);
    },
    publish(ev) {
      send(["EVENT", ev]);
      return okFor(ev.id);
    },
    async close() {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await closed;
    },
    closed,
  };
}
