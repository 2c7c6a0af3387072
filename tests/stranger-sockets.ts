/**
 * A stranger's idle TCP sockets, for tests that show they cannot lock members out: `count`
 * sockets to `port` from 127.0.0.2 and up (so per-IP limits see several IPs), each sending
 * nothing. A socket the far end closes is opened again at once, as an attacker would, until
 * stop(); every socket's lifetime is recorded, so a test can assert how soon they were cut.
 */
import { connect, type Socket } from "node:net";

export interface StrangerSockets {
  /** Sockets open now. */
  open(): number;
  /** How long (ms) each socket the far end closed had stayed open. */
  lifetimes(): number[];
  /** Sockets the far end refused at once (closed within `refusedMs`). */
  refused(refusedMs?: number): number;
  /** Closes every socket and stops reopening; resolves when all are closed. */
  stop(): Promise<void>;
}

export interface StrangerInit {
  port: number;
  host?: string;
  count: number;
  /** Distinct source addresses 127.0.0.2, 127.0.0.3, …; sockets are spread over them in turn. */
  ips?: number;
  /** Open a closed socket again (default true). */
  reopen?: boolean;
  /** Upper bound on sockets opened in all, so a test loop cannot run away. */
  maxOpened?: number;
}

/** Opens the sockets; resolves once each first one connected (or was refused). */
export async function holdStrangerSockets(init: StrangerInit): Promise<StrangerSockets> {
  const ips = init.ips ?? 1;
  const maxOpened = init.maxOpened ?? init.count * 20;
  const live = new Set<Socket>();
  const lifetimes: number[] = [];
  let opened = 0;
  let stopped = false;
  const closedAll: (() => void)[] = [];

  function openOne(i: number): Promise<void> {
    if (stopped || opened >= maxOpened) return Promise.resolve();
    opened++;
    const started = performance.now();
    const socket = connect({
      host: init.host ?? "127.0.0.1",
      port: init.port,
      localAddress: `127.0.0.${2 + (i % ips)}`,
    });
    live.add(socket);
    socket.on("error", () => {/* a reset is what the test waits for */});
    return new Promise<void>((ready) => {
      socket.once("connect", () => ready());
      socket.once("close", () => {
        ready();
        live.delete(socket);
        if (!stopped) {
          lifetimes.push(performance.now() - started);
          if (init.reopen !== false) void openOne(i);
        }
        if (live.size === 0) closedAll.splice(0).forEach((f) => f());
      });
    });
  }

  await Promise.all(Array.from({ length: init.count }, (_, i) => openOne(i)));
  return {
    open: () => live.size,
    lifetimes: () => [...lifetimes],
    refused: (refusedMs = 500) => lifetimes.filter((ms) => ms < refusedMs).length,
    async stop() {
      stopped = true;
      if (live.size === 0) return;
      const done = new Promise<void>((r) => closedAll.push(r));
      for (const s of live) s.destroy();
      await done;
    },
  };
}
