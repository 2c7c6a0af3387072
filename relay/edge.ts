// The relay's listener: node:http with the `ws` package's WebSocket server, because both must
// refuse before they buffer. `ws` reads a frame's header first and closes with 1009 when it
// announces more than max_message_length (Deno.upgradeWebSocket buffers a whole frame, 32 MiB
// included, before the app sees its size); Deno.serve has no header timeout either.
//
// Socket by socket, before any request reaches the app:
// - the global cap and the per-address cap on strangers (connection-gate.ts), refused with a
//   plain 503/429 that says which;
// - a header deadline: headers must be complete headerTimeoutSeconds after the socket opened or
//   after its last response (node's own headersTimeout does nothing under Deno 2.9, measured);
// - bodies capped (413) and read within the same deadline, then handed to the app as a web
//   Request, whose Response is written back.
// With --trust-proxy the address comes from the proxy's headers (client-ip.ts), known only once
// the request is read: sockets then count against their address from the upgrade on.
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
// @ts-types="./ws.d.ts"
import { WebSocketServer } from "ws";
import { type Logger, settleWithin } from "../protocol/mod.ts";
import { clientIp, ipKey } from "./client-ip.ts";
import { type ConnectionGate, createConnectionGate, type Slot } from "./connection-gate.ts";
import type { WsSocket } from "./ws.d.ts";

export interface EdgeLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  headerTimeoutSeconds: number;
  maxHttpBodyBytes: number;
  /** Largest WebSocket message (NIP-11 max_message_length). */
  maxMessageLength: number;
}

export interface EdgeInit {
  host: string;
  /** 0 picks a free port. */
  port: number;
  limits: EdgeLimits;
  trustProxy: boolean;
  /** The app, for plain HTTP; `ip` is the client's address. */
  fetch(req: Request, ip: string): Promise<Response>;
  /** Takes over an opened WebSocket. */
  accept(socket: WsSocket, slot: Slot, ip: string): void;
  log: Logger;
}

export interface Edge {
  port: number;
  gate: ConnectionGate;
  /** Stops listening and ends every socket still open (after `graceMs` for closing frames). */
  close(graceMs?: number): Promise<void>;
}

interface SocketState {
  slot: Slot;
  deadline?: ReturnType<typeof setTimeout>;
  /** Requests read and not yet answered (pipelining): the deadline waits for them. */
  busy: number;
}

export async function listenEdge(init: EdgeInit): Promise<Edge> {
  const { limits, log } = init;
  const gate = createConnectionGate(limits);
  const states = new WeakMap<Duplex, SocketState>();
  const sockets = new Set<Socket>();
  let allClosed: (() => void) | undefined;
  const headerMs = limits.headerTimeoutSeconds * 1000;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageLength,
    perMessageDeflate: false, // compression would let a small frame inflate past the limit
    clientTracking: false,
  });
  const server = createServer();

  const arm = (socket: Socket, state: SocketState) => {
    clearTimeout(state.deadline);
    state.deadline = setTimeout(() => socket.destroy(), headerMs);
  };

  // Refusals are logged once a minute at most, with their count: a flood must not flood the log.
  let refused = 0;
  let loggedAt = -Infinity;
  const refuse = (socket: Duplex, status: number, why: string) => {
    refused++;
    const now = performance.now();
    if (now - loggedAt >= 60_000) {
      log.warn(`refused ${refused} connection(s) since this was last said; the latest: ${why}`);
      refused = 0;
      loggedAt = now;
    }
    refuseRaw(socket, status, why);
  };

  server.on("connection", (socket: Socket) => {
    const slot = gate.open();
    if (typeof slot === "string") return refuse(socket, 503, slot);
    if (!init.trustProxy) {
      const refusal = slot.assign(ipKey(socket.remoteAddress ?? "unknown"));
      if (refusal !== undefined) {
        slot.close();
        return refuse(socket, 429, refusal);
      }
    }
    const state: SocketState = { slot, busy: 0 };
    states.set(socket, state);
    sockets.add(socket);
    arm(socket, state);
    socket.on("close", () => {
      clearTimeout(state.deadline);
      slot.close();
      sockets.delete(socket);
      if (sockets.size === 0) allClosed?.();
    });
  });

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const state = states.get(socket);
    if (!state) return; // refused at connect: the answer is on its way, then the socket ends
    state.busy++;
    res.on("close", () => {
      if (--state.busy === 0 && !socket.destroyed) arm(socket, state);
    });
    answer(req, res).catch((err) => {
      log.error("the relay failed on an HTTP request", { error: String(err) });
      res.destroy();
    });
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, limits.maxHttpBodyBytes);
    if (typeof body === "number") {
      res.writeHead(body, { "content-type": "text/plain; charset=utf-8", connection: "close" });
      return void res.end(
        body === 413
          ? `request body is over ${limits.maxHttpBodyBytes} bytes\n`
          : "malformed request\n",
      );
    }
    // The whole request is read: from here the app's time is not the client's to run out.
    const state = states.get(req.socket);
    if (state) clearTimeout(state.deadline);
    let request: Request;
    try {
      request = toRequest(req, body);
    } catch (err) {
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" });
      return void res.end(`bad request: ${(err as Error).message}\n`);
    }
    const response = await init.fetch(
      request,
      clientIp(req.socket.remoteAddress, req.headers, init.trustProxy),
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => headers[name] = value);
    headers["content-length"] = String(bytes.length);
    res.writeHead(response.status, headers);
    res.end(bytes);
  }

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Uint8Array) => {
    const state = states.get(socket);
    if (!state) return; // refused at connect, as above
    clearTimeout(state.deadline);
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/") return refuseRaw(socket, 404, "WebSockets are served at / only");
    const ip = clientIp((socket as Socket).remoteAddress, req.headers, init.trustProxy);
    if (init.trustProxy) {
      const refusal = state.slot.assign(ipKey(ip));
      if (refusal !== undefined) return refuse(socket, 429, refusal);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", () => stopReading(socket));
      init.accept(ws, state.slot, ip);
    });
  });

  // A malformed request line or header: node answers nothing by itself here.
  server.on("clientError", (_err: Error, socket: Duplex) => {
    if (states.has(socket)) refuseRaw(socket, 400, "bad request");
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: Error) =>
      reject(
        new Error(`the relay could not listen on ${init.host}:${init.port}: ${err.message}`),
      ));
    server.listen(init.port, init.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : init.port;

  return {
    port,
    gate,
    async close(graceMs = 1000) {
      server.close();
      server.closeIdleConnections(); // keep-alive HTTP sockets: nothing in flight to wait for
      if (sockets.size > 0) {
        await settleWithin(new Promise<void>((resolve) => allClosed = resolve), graceMs);
      }
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** The body, or the status refusing it: 413 over `max`, 400 when the client aborts. */
function readBody(req: IncomingMessage, max: number): Promise<Uint8Array | number> {
  if (Number(req.headers["content-length"] ?? 0) > max) return Promise.resolve(413);
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    req.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.pause();
        return resolve(413);
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", () => resolve(400));
    req.on("aborted", () => resolve(400));
  });
}

function toRequest(req: IncomingMessage, body: Uint8Array): Request {
  const host = req.headers.host ?? "localhost";
  const url = new URL(req.url ?? "/", `http://${host}`);
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  // Node hands Buffers, whose backing store is a plain ArrayBuffer.
  const init = { method, headers, body: hasBody ? body as Uint8Array<ArrayBuffer> : undefined };
  return new Request(url, init);
}

/**
 * After a protocol error (a frame over maxPayload: 1009) `ws` has sent its close frame and then
 * reads on, discarding, until the peer's close frame, which comes after the rest of the
 * oversized frame: 32 MiB read for nothing. Read on only up to DRAIN_BYTES (so a client that
 * sent a few MiB too many is not blocked from reading the close frame: it sees 1009), then stop
 * (the kernel's buffer fills and the sender stalls); end the socket once the peer had time.
 */
const DRAIN_BYTES = 8 << 20;
const DRAIN_MS = 2000;

function stopReading(socket: Duplex): void {
  let drained = 0;
  socket.on("data", (chunk: Uint8Array) => {
    drained += chunk.length;
    if (drained > DRAIN_BYTES) socket.pause();
  });
  const timer = setTimeout(() => socket.destroy(), DRAIN_MS);
  socket.once("close", () => clearTimeout(timer));
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

/** Answers on the raw socket (no request was, or will be, read) and closes it. */
function refuseRaw(socket: Duplex, status: number, text: string): void {
  const body = new TextEncoder().encode(`${text}\n`);
  const retry = status === 429 || status === 503 ? "retry-after: 10\r\n" : "";
  try {
    socket.end(
      `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${body.length}\r\n${retry}connection: close\r\n\r\n${text}\n`,
    );
  } catch {
    // the peer is gone already
  }
  // A peer that never reads must not keep the socket: end() waits for it to drain.
  const timer = setTimeout(() => socket.destroy(), 1000);
  socket.once("close", () => clearTimeout(timer));
}
