/**
 * What every libp2p node of Grove (the relay's rendezvous and the mesh nodes) needs to run
 * under Deno: both sides speak the same transports, and both meet the same runtime traps.
 */

/**
 * libp2p's lock library opens a BroadcastChannel and calls unref() on it, which Deno's channel
 * lacks, so the process would never exit. Grove's libp2p nodes run no workers: an inert channel
 * will do. Installed once per process, before the first createLibp2p.
 */
export function stubBroadcastChannel(): void {
  const g = globalThis as { BroadcastChannel?: unknown };
  if ((g.BroadcastChannel as { groveInert?: boolean } | undefined)?.groveInert) return;
  class InertBroadcastChannel extends EventTarget {
    static groveInert = true;
    onmessage = null;
    constructor(readonly name: string) {
      super();
    }
    postMessage(_msg: unknown) {}
    close() {}
    unref() {}
    ref() {}
  }
  g.BroadcastChannel = InertBroadcastChannel;
}

/**
 * The QUIC transport when its native addon loads here (it needs --allow-ffi and an npm
 * install for this platform); otherwise undefined, after saying so: TCP always works.
 */
export async function loadQuic(
  log: { warn(msg: string, fields?: Record<string, unknown>): void },
) {
  try {
    const mod = await import("@chainsafe/libp2p-quic");
    return mod.quic();
  } catch (err) {
    log.warn("QUIC is not available here (the native addon needs --allow-ffi); TCP only", {
      error: err instanceof Error ? err.message : String(err),
    });
    return undefined;
  }
}
