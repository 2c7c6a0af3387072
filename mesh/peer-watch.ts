/**
 * Liveness of idle connections to the peers this node routes requests to: every `intervalMs`
 * each open connection to a serving peer is pinged at the muxer (a yamux ping: one frame each
 * way, answered by the peer's event loop, no stream, no protocol negotiation). A peer that does
 * not answer within DEAD_MS is marked failed in the router, so the next request picks another
 * node instead of waiting on a frozen one; its connections stay open and pinged, and it is taken
 * back the moment a ping answers again (a laptop waking up). A request in flight has its own, finer check (ALIVE_MS frames).
 *
 * libp2p's own connection monitor pings too, but every 10 s through a new stream, and a failed
 * ping only closes the connection: the router would still pick the peer and the request's dial
 * would wait its whole connect limit on a frozen process.
 */
import type { Connection } from "@libp2p/interface";
import type { Logger } from "../protocol/mod.ts";
import type { MeshNode } from "./p2p-node.ts";
import type { Router } from "./router.ts";
import { DEAD_MS, deadline, errorText, shortPeer, untilAborted } from "./stream-frames.ts";

/** A connection's muxer as yamux has it: a round trip at the muxer, in ms. */
interface Pingable {
  ping(options?: { signal?: AbortSignal }): Promise<number>;
}

export interface PeerWatchInit {
  /** The node while it runs. */
  node: () => Pick<MeshNode, "libp2p"> | undefined;
  /** The peers worth watching: those serving a model, this node left out. */
  peers: () => Iterable<string>;
  router: Pick<Router, "markFailed" | "markOk" | "markSilent">;
  intervalMs?: number;
  timeoutMs?: number;
  log?: Logger;
}

export interface PeerWatch {
  /** One round of pings now (the timer runs these); resolves when each answered or timed out. */
  check(): Promise<void>;
  stop(): void;
}

const INTERVAL_MS = 2000;

export function watchPeers(init: PeerWatchInit): PeerWatch {
  const intervalMs = init.intervalMs ?? INTERVAL_MS;
  const timeoutMs = init.timeoutMs ?? DEAD_MS;
  /** Peers this watch marked failed: only those does an answered ping take back. */
  const silent = new Set<string>();
  const pending = new Set<string>();
  let stopped = false;

  async function pingPeer(peerId: string, conns: Connection[]): Promise<void> {
    const muxed = conns.filter((c) => c.status === "open" && pingable(c) !== undefined);
    if (muxed.length === 0) return;
    pending.add(peerId);
    // A patient limit: an answer waiting unread while this process was starved is an answer.
    const { signal, clear } = deadline(timeoutMs);
    try {
      // The ping itself is never aborted: yamux forgets an aborted ping, and the late answer of a
      // peer that thaws (a laptop waking) is then an unrequested ping, which makes yamux tear the
      // whole connection down. Left running, the late answer clears the peer; a later round's ping
      // joins the one still out.
      const answered = Promise.any(muxed.map((c) => pingable(c)!.ping()));
      answered.catch(() => {}); // a connection closing under it: this round's limit decides
      const rtt = await untilAborted(answered, signal);
      if (silent.delete(peerId)) {
        init.log?.info(`peer ${shortPeer(peerId)} answers again`);
        init.router.markOk(peerId, rtt);
      }
    } catch (err) {
      if (stopped) return;
      init.router.markFailed(peerId);
      init.router.markSilent(peerId); // renewed each round while it stays silent
      if (!silent.has(peerId)) {
        silent.add(peerId);
        const why = errorText((err as AggregateError).errors?.[0] ?? err);
        init.log?.warn(
          `peer ${shortPeer(peerId)} did not answer a ping in ${timeoutMs} ms (${why})`,
        );
      }
    } finally {
      clear();
      pending.delete(peerId);
    }
  }

  async function check(): Promise<void> {
    const libp2p = init.node()?.libp2p;
    if (!libp2p || stopped) return;
    const byPeer = new Map<string, Connection[]>();
    for (const c of libp2p.getConnections()) {
      const id = c.remotePeer.toString();
      byPeer.set(id, [...byPeer.get(id) ?? [], c]);
    }
    const rounds: Promise<void>[] = [];
    for (const peerId of new Set(init.peers())) {
      // The last ping still out decides by its own timeout; no connection: a request's dial tests.
      const conns = byPeer.get(peerId);
      if (!pending.has(peerId) && conns) rounds.push(pingPeer(peerId, conns));
      // A silent peer whose ping is still out has not answered yet: its mark is renewed every
      // round, not only when that ping's patient limit runs out, which on a starved machine can
      // come later than SILENT_MS and let mid-stream failover try a frozen node.
      else if (conns && silent.has(peerId)) init.router.markSilent(peerId);
      if (!conns && silent.delete(peerId)) init.router.markSilent(peerId, false);
    }
    await Promise.all(rounds);
  }

  const timer = setInterval(() => void check().catch(() => {}), intervalMs);
  return {
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

function pingable(conn: Connection): Pingable | undefined {
  // libp2p 3's connections keep their muxer as a field the interface does not name.
  const muxer = (conn as unknown as { muxer?: Partial<Pingable> }).muxer;
  return typeof muxer?.ping === "function" ? muxer as Pingable : undefined;
}
