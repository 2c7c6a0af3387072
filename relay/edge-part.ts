// The relay's edge as one of its parts: it listens (edge.ts) and hands requests and sockets to the
// app, sets the relay's URLs once the port is bound, and at stop closes every WebSocket (1001)
// before it stops listening.
import type { Logger, Startable } from "../protocol/mod.ts";
import { type EdgeLimits, listenEdge } from "./edge.ts";
import { type LateUrls, relayUrls } from "./relay-urls.ts";
import type { RelayServer } from "./server.ts";

export interface EdgePartInit {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The ws(s):// URL clients use, when it is not ws://host:port/. */
  publicUrl?: string;
  /** Client addresses from the proxy's headers (config.ts, RelayInit.trustProxy). */
  trustProxy: boolean;
  limits: EdgeLimits;
  log: Logger;
}

export interface EdgePartComponents {
  server: Pick<RelayServer, "fetch" | "accept" | "closeAll">;
  urls: Pick<LateUrls, "set">;
}

export interface EdgePart extends Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createEdgePart(init: EdgePartInit, c: EdgePartComponents): EdgePart {
  const { log } = init;
  let close: (() => Promise<void>) | undefined;
  return {
    name: "relay edge",
    async start() {
      if (init.trustProxy) {
        log.info(
          "client addresses come from the proxy's X-Real-IP or X-Forwarded-For (--trust-proxy)",
        );
        if (!init.publicUrl) {
          log.warn(
            "--trust-proxy without --public-url: anyone who reaches this port directly can claim " +
              "any address; let only the proxy reach it",
          );
        }
      }
      const edge = await listenEdge({
        host: init.host,
        port: init.port,
        limits: init.limits,
        trustProxy: init.trustProxy,
        fetch: (req, ip) => c.server.fetch(req, ip),
        accept: (socket, slot) => c.server.accept(socket, slot),
        log,
      });
      close = () => edge.close();
      c.urls.set(relayUrls(init.host, edge.port, init.publicUrl));
    },
    async stop() {
      c.server.closeAll();
      await close?.();
    },
  };
}
