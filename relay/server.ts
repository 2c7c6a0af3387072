// The relay's HTTP face (hono): one URL serves NIP-01 over WebSocket, NIP-11 to
// `Accept: application/nostr+json`, NIP-86 to `POST` with `application/nostr+json+rpc`, and mesh
// admission at /admission. `fetch` works in process; Deno.serve sits at the edge (relay.ts).
//
// The WebSocket upgrade calls Deno.upgradeWebSocket itself rather than hono/deno's helper: that
// helper is deprecated upstream and compares the Upgrade header case-sensitively, and the relay
// needs the raw socket's bufferedAmount to bound what a slow reader makes it queue.
import { Hono } from "hono";
import type { RelayInformation } from "../protocol/mod.ts";
import type { Logger } from "./config.ts";
import type { Connection } from "./connection.ts";

export interface ServerComponents {
  /** The NIP-11 document, asked for on each request (the rendezvous may start later). */
  info(): RelayInformation;
  /** A protocol state machine for a new socket. */
  connect(send: (msg: unknown[]) => void): Connection;
  nip86?: (req: Request) => Promise<Response>;
  admission?: (req: Request) => Promise<Response>;
  /** Bytes queued on one socket before it is closed as a slow consumer. */
  maxSendBuffer: number;
  log?: Logger;
}

export interface RelayServer {
  fetch(req: Request): Promise<Response>;
  /** Open WebSockets. */
  sockets(): number;
  /** Closes every WebSocket (at stop). */
  closeAll(): void;
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
};

export function createRelayServer(c: ServerComponents): RelayServer {
  const open = new Set<WebSocket>();
  const app = new Hono();

  app.options("*", () => new Response(null, { status: 204, headers: CORS }));

  app.get("/", (ctx) => {
    const req = ctx.req.raw;
    if ((req.headers.get("upgrade") ?? "").toLowerCase() === "websocket") {
      return upgrade(req, c, open);
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
    return withCors(await c.nip86(ctx.req.raw));
  });

  app.all("/admission", async (ctx) => {
    if (!c.admission) {
      return Response.json(
        { error: { code: "not_found", message: "this relay runs no mesh admission" } },
        { status: 404 },
      );
    }
    return await c.admission(ctx.req.raw);
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

  return {
    fetch: async (req) => await app.fetch(req),
    sockets: () => open.size,
    closeAll() {
      for (const socket of open) closeQuietly(socket, 1001, "relay shutting down");
      open.clear();
    },
  };
}

function upgrade(req: Request, c: ServerComponents, open: Set<WebSocket>): Response {
  let socket: WebSocket, response: Response;
  try {
    ({ socket, response } = Deno.upgradeWebSocket(req));
  } catch (err) {
    return new Response(`WebSocket upgrade failed: ${(err as Error).message}\n`, { status: 400 });
  }
  let conn: Connection | undefined;
  const send = (msg: unknown[]) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > c.maxSendBuffer) {
      c.log?.warn("closed a connection that stopped reading (send queue full)", {
        queued: socket.bufferedAmount,
      });
      open.delete(socket);
      conn?.close();
      closeQuietly(socket, 1008, "slow consumer: send queue full");
      return;
    }
    try {
      socket.send(JSON.stringify(msg));
    } catch (err) {
      c.log?.warn("could not send on a WebSocket", { error: String(err) });
    }
  };
  socket.onopen = () => {
    open.add(socket);
    conn = c.connect(send);
    conn.open();
  };
  socket.onmessage = (e) => conn?.receive(e.data);
  socket.onclose = () => {
    open.delete(socket);
    conn?.close();
  };
  socket.onerror = () => {}; // onclose follows; an error event alone must not crash the relay
  return response;
}

function closeQuietly(socket: WebSocket, code: number, reason: string): void {
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
