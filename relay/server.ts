// The relay's HTTP face (hono): one URL serves NIP-01 over WebSocket, NIP-11 to
// `Accept: application/nostr+json`, NIP-86 to `POST` with `application/nostr+json+rpc`, and mesh
// admission at /admission. `fetch` works in process; the node:http listener and the WebSocket
// upgrade sit at the edge (edge.ts), which hands each opened WebSocket to `accept`.
//
// Per socket, here: the send queue bound (a reader that stops reading is closed, 1008), the idle
// rule (an unauthenticated socket with no subscription, silent for idleTimeoutSeconds, is
// closed), and a ping every pingIntervalSeconds (a socket that left the last one unanswered is
// dropped: a vanished peer otherwise holds its slot until TCP gives up, hours later).
import { Hono } from "hono";
import type { Logger, RelayInformation } from "../protocol/mod.ts";
import type { Connection } from "./connection.ts";
import type { Slot } from "./connection-gate.ts";
import type { WsSocket } from "./ws.d.ts";

export interface ServerComponents {
  /** The NIP-11 document, asked for on each request (the rendezvous may start later). */
  info(): RelayInformation;
  /** A protocol state machine for a new socket. */
  connect(send: (msg: unknown[]) => void): Connection;
  /** `ip`: the client's address as the edge saw it (undefined in process). */
  nip86?: (req: Request, ip?: string) => Promise<Response>;
  admission?: (req: Request, ip?: string) => Promise<Response>;
  /** Owner-only `GET /metrics` (relay-metrics.ts). */
  metrics?: (req: Request, ip?: string) => Promise<Response>;
  /** Bytes queued on one socket before it is closed as a slow consumer. */
  maxSendBuffer: number;
  /** Seconds an unauthenticated socket without subscriptions may stay silent (default 60). */
  idleTimeoutSeconds?: number;
  /** Seconds between pings (default 30). */
  pingIntervalSeconds?: number;
  /** Whether an authenticated pubkey is a member: its socket stops counting against its IP. */
  isMember?: (pubkey: string) => boolean;
  /** Monotonic milliseconds; tests pass a fake clock. */
  clock?: () => number;
  log?: Logger;
}

export interface RelayServer {
  fetch(req: Request, ip?: string): Promise<Response>;
  /** Takes over an opened WebSocket; `slot` is its place in the edge's connection counts. */
  accept(socket: WsSocket, slot?: Slot): void;
  /** Open WebSockets. */
  sockets(): number;
  /** One round of the idle and ping rules (the timer calls it; tests call it directly). */
  sweep(): void;
  /** Closes every WebSocket (at stop). */
  closeAll(): void;
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
};

type Env = { Bindings: { ip?: string } };

const utf8 = new TextDecoder();

interface Held {
  conn: Connection;
  slot?: Slot;
  /** Clock of the last frame from the client. */
  heardAt: number;
  /** The last ping was answered (or none was sent yet). */
  answered: boolean;
}

export function createRelayServer(c: ServerComponents): RelayServer {
  const held = new Map<WsSocket, Held>();
  const clock = c.clock ?? (() => performance.now());
  const idleMs = (c.idleTimeoutSeconds ?? 60) * 1000;
  const pingMs = (c.pingIntervalSeconds ?? 30) * 1000;
  let lastPing = clock();
  let timer: ReturnType<typeof setInterval> | undefined;
  const app = new Hono<Env>();

  app.options("*", () => new Response(null, { status: 204, headers: CORS }));

  app.get("/", (ctx) => {
    const req = ctx.req.raw;
    if ((req.headers.get("upgrade") ?? "").toLowerCase() === "websocket") {
      // The edge answers upgrades before they reach the app; one that gets here (in process,
      // or a malformed handshake) is refused plainly.
      return new Response(
        "WebSocket upgrade failed: not a WebSocket handshake this relay takes\n",
        {
          status: 400,
        },
      );
    }
    if ((req.headers.get("accept") ?? "").includes("application/nostr+json")) {
      return new Response(JSON.stringify(c.info()), {
        headers: { "content-type": "application/nostr+json", ...CORS },
      });
    }
    const info = c.info();
    return new Response(
      `${info.name}: a Grove relay. Connect a Nostr client to this URL over WebSocket; ` +
        `ask with "Accept: application/nostr+json" for its NIP-11 document.\n`,
      { headers: { "content-type": "text/plain; charset=utf-8", ...CORS } },
    );
  });

  app.post("/", async (ctx) => {
    const type = (ctx.req.header("content-type") ?? "").toLowerCase();
    if (!type.startsWith("application/nostr+json+rpc") || !c.nip86) {
      return withCors(Response.json(
        {
          result: null,
          error: "POST / takes NIP-86 calls (Content-Type application/nostr+json+rpc)",
        },
        { status: 415 },
      ));
    }
    return withCors(await c.nip86(ctx.req.raw, ctx.env?.ip));
  });

  app.all("/admission", async (ctx) => {
    if (!c.admission) {
      return Response.json(
        { error: { code: "not_found", message: "this relay runs no mesh admission" } },
        { status: 404 },
      );
    }
    return await c.admission(ctx.req.raw, ctx.env?.ip);
  });

  app.get("/metrics", async (ctx) => {
    if (!c.metrics) {
      return Response.json({ error: { code: "not_found", message: "no metrics here" } }, {
        status: 404,
      });
    }
    return await c.metrics(ctx.req.raw, ctx.env?.ip);
  });

  app.notFound(() =>
    Response.json({ error: { code: "not_found", message: "no such path on this relay" } }, {
      status: 404,
    })
  );
  app.onError((err) => {
    c.log?.error("the relay failed on an HTTP request", { error: String(err) });
    return Response.json({ error: { code: "internal", message: "internal error" } }, {
      status: 500,
    });
  });

  function drop(socket: WsSocket): void {
    const h = held.get(socket);
    if (!h) return;
    held.delete(socket);
    h.conn.close();
    h.slot?.close();
    if (held.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  function sweep(): void {
    const t = clock();
    const pingDue = t - lastPing >= pingMs;
    if (pingDue) lastPing = t;
    for (const [socket, h] of held) {
      if (!h.conn.authed() && h.conn.subscriptionCount() === 0 && t - h.heardAt >= idleMs) {
        closeQuietly(
          socket,
          1000,
          `idle: ${idleMs / 1000} s without AUTH, a subscription or a message`,
        );
        drop(socket);
      } else if (pingDue) {
        if (!h.answered) {
          c.log?.info("dropped a connection that did not answer a ping");
          socket.terminate();
          drop(socket);
          continue;
        }
        h.answered = false;
        try {
          socket.ping();
        } catch {
          // closing already; its close event drops it
        }
      }
    }
  }

  function accept(socket: WsSocket, slot?: Slot): void {
    const send = (msg: unknown[]) => {
      if (socket.readyState !== 1) return;
      if (socket.bufferedAmount > c.maxSendBuffer) {
        c.log?.warn("closed a connection that stopped reading (send queue full)", {
          queued: socket.bufferedAmount,
        });
        closeQuietly(socket, 1008, "slow consumer: send queue full");
        drop(socket);
        return;
      }
      socket.send(JSON.stringify(msg));
    };
    const conn = c.connect(send);
    const h: Held = { conn, slot, heardAt: clock(), answered: true };
    held.set(socket, h);
    // A sweep every sixth of the idle time: an idle socket goes within 1⅙ of it.
    timer ??= setInterval(sweep, Math.max(50, Math.min(idleMs, pingMs) / 6));
    socket.on("message", (data, isBinary) => {
      if (!held.has(socket)) return;
      h.heardAt = clock();
      h.answered = true;
      const wasAuthed = conn.authed();
      conn.receive(isBinary ? data : utf8.decode(data));
      const authed = conn.authed();
      if (authed !== undefined && authed !== wasAuthed && c.isMember?.(authed)) slot?.member();
    });
    socket.on("pong", () => h.answered = true);
    socket.on("close", () => drop(socket));
    // An error (a frame over maxPayload: ws closes with 1009) is followed by close.
    socket.on("error", (err) => {
      if (/max payload/i.test(err.message)) {
        c.log?.warn("closed a connection that sent a frame over max_message_length (1009)");
      }
    });
    conn.open();
  }

  return {
    fetch: async (req, ip) => await app.fetch(req, { ip }),
    accept,
    sockets: () => held.size,
    sweep,
    closeAll() {
      for (const socket of [...held.keys()]) {
        closeQuietly(socket, 1001, "relay shutting down");
        drop(socket);
      }
    },
  };
}

function closeQuietly(socket: WsSocket, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // already closing
  }
}

function withCors(res: Response): Response {
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(CORS)) headers.set(k, v);
  return new Response(res.body, { status: res.status, headers });
}
