// The part of the `ws` package (8.x) the relay's edge uses. The package ships no types, and
// @types/ws would be one more dependency for a dozen lines.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

/** A server-side WebSocket. */
export interface WsSocket {
  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes handed to send() that the kernel has not taken yet. */
  readonly bufferedAmount: number;
  send(data: string, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  /** Destroys the socket without a closing handshake. */
  terminate(): void;
  ping(): void;
  on(event: "message", fn: (data: Uint8Array, isBinary: boolean) => void): this;
  on(event: "close", fn: (code: number, reason: Uint8Array) => void): this;
  on(event: "error", fn: (err: Error) => void): this;
  on(event: "pong", fn: () => void): this;
}

export interface WebSocketServerOptions {
  noServer: true;
  /** Largest message accepted; a frame header announcing more closes the socket with 1009. */
  maxPayload: number;
  perMessageDeflate: boolean;
  clientTracking: boolean;
}

export class WebSocketServer {
  constructor(options: WebSocketServerOptions);
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Uint8Array,
    done: (ws: WsSocket) => void,
  ): void;
}

export interface ClientOptions {
  /** The source address to connect from (tests: a stranger at 127.0.0.2). */
  localAddress?: string;
  headers?: Record<string, string>;
}

/** The client side (tests use it: Deno's WebSocket cannot pick a source address). */
export default class WebSocket {
  constructor(url: string, options?: ClientOptions);
  readonly readyState: 0 | 1 | 2 | 3;
  send(data: string | Uint8Array, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: "open", fn: () => void): this;
  on(event: "message", fn: (data: Uint8Array, isBinary: boolean) => void): this;
  on(event: "close", fn: (code: number, reason: Uint8Array) => void): this;
  on(event: "error", fn: (err: Error) => void): this;
  on(
    event: "unexpected-response",
    fn: (req: unknown, res: { statusCode?: number; headers: Record<string, string> }) => void,
  ): this;
}
