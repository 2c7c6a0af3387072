/**
 * Clients that connect from a chosen loopback address (127.0.0.2 and up): a stranger's sockets,
 * so the relay's per-address limits are what a test exercises. Deno's WebSocket and fetch
 * cannot pick a source address; `ws`'s client, node:net and Deno.createHttpClient can.
 */
import { connect, type Socket } from "node:net";
// @ts-types="../relay/ws.d.ts"
import WebSocket from "ws";

export interface StrangerSocket {
  /** Every parsed message so far, in order. */
  inbox: unknown[][];
  send(msg: unknown): void;
  /** The first message (after those already taken) for which `match` holds. */
  next(match: (m: unknown[]) => boolean, ms?: number): Promise<unknown[]>;
  /** Takes every message received so far: next() waits for new ones. */
  skip(): void;
  /** Resolves with the close code once the socket closed. */
  closed: Promise<number>;
  close(): void;
}

export type Opened = { ok: true; socket: StrangerSocket } | { ok: false; status: number };

/** A WebSocket to `url` from `localAddress`; the HTTP status when the relay refuses it. */
export function openFrom(
  url: string,
  localAddress: string,
  headers: Record<string, string> = {},
): Promise<Opened> {
  const ws = new WebSocket(url, { localAddress, headers });
  const inbox: unknown[][] = [];
  let read = 0;
  let wake = () => {};
  let closeCode = 0;
  const closed = new Promise<number>((resolve) =>
    ws.on("close", (code) => {
      closeCode = code;
      wake();
      resolve(code);
    })
  );
  ws.on("message", (data) => {
    inbox.push(JSON.parse(new TextDecoder().decode(data)));
    wake();
  });
  const socket: StrangerSocket = {
    inbox,
    send: (msg) => ws.send(typeof msg === "string" ? msg : JSON.stringify(msg)),
    async next(match, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        while (read < inbox.length) {
          const m = inbox[read++];
          if (match(m)) return m;
        }
        if (closeCode !== 0) throw new Error(`socket closed (${closeCode}) before the message`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching message in ${ms} ms: ${JSON.stringify(inbox)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    skip: () => void (read = inbox.length),
    closed,
    close: () => ws.close(),
  };
  return new Promise((resolve) => {
    ws.on("open", () => resolve({ ok: true, socket }));
    ws.on("unexpected-response", (_req, res) => {
      resolve({ ok: false, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on("error", () => resolve({ ok: false, status: 0 }));
  });
}

/** A raw TCP socket from `localAddress` that has sent `text` (e.g. half a request). */
export async function rawFrom(port: number, localAddress: string, text: string): Promise<Socket> {
  const socket = connect({ host: "127.0.0.1", port, localAddress });
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(text);
  return socket;
}

/** fetch from `localAddress`. */
export async function fetchFrom(
  localAddress: string,
  url: string,
  init: RequestInit = {},
): Promise<Response> {
  const client = Deno.createHttpClient({ localAddress });
  try {
    const res = await fetch(url, { ...init, client });
    // The body is read while the client is open, then handed back whole.
    const body = await res.arrayBuffer();
    return new Response(body, { status: res.status, headers: res.headers });
  } finally {
    client.close();
  }
}
