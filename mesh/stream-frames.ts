/**
 * Length-prefixed JSON frames (protocol/framing) over libp2p 3 streams, with the timeouts a mesh
 * stream needs so a silent peer turns into an error instead of a hang.
 */
import type { Stream } from "@libp2p/interface";
import { encodeFrame, readFrames } from "../protocol/mod.ts";

/** Requests carry whole chat histories; 8 MiB is far above any context a node serves. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

export class FrameTimeoutError extends Error {
  override name = "FrameTimeoutError";
}

/** Sends one frame at once; waits only on backpressure. */
export async function writeFrame(stream: Stream, value: unknown): Promise<void> {
  if (!stream.send(encodeFrame(value))) await stream.onDrain();
}

export interface FrameWriter {
  /** Queues one frame; it leaves at once unless a send went out less than `coalesceMs` ago. */
  write(value: unknown): Promise<void>;
  /** Sends whatever is queued now. */
  flush(): Promise<void>;
}

/**
 * Frames for a fast producer (a small model decodes a token in ~0.3 ms): each send costs a yamux
 * frame, a noise seal and a socket write, so frames that follow a send within `coalesceMs` wait
 * and leave together in one send, as back-to-back length-prefixed frames (the wire format does
 * not change). The first frame always leaves at once, and so does every frame of a producer
 * slower than `coalesceMs`; a held frame leaves with the next one, or when the event loop next
 * runs timers, whichever comes first. Callers flush() after their last frame.
 */
export function frameWriter(stream: Stream, coalesceMs = 2): FrameWriter {
  let held: Uint8Array[] = [];
  let lastSend = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let draining: Promise<void> | undefined;
  let failure: unknown;

  function sendHeld(): void {
    clearTimeout(timer);
    timer = undefined;
    if (held.length === 0) return;
    const bytes = held.length === 1 ? held[0] : concat(held);
    held = [];
    lastSend = performance.now();
    if (!stream.send(bytes)) {
      draining = stream.onDrain().finally(() => draining = undefined);
      draining.catch(() => {}); // surfaces at the next write
    }
  }

  function onTimer(): void {
    timer = undefined;
    try {
      sendHeld();
    } catch (err) {
      failure ??= err;
    }
  }

  async function flush(): Promise<void> {
    if (failure !== undefined) throw failure;
    if (draining) await draining;
    sendHeld();
    if (draining) await draining;
  }

  return {
    flush,
    async write(value) {
      if (failure !== undefined) throw failure;
      held.push(encodeFrame(value));
      const since = performance.now() - lastSend;
      if (since >= coalesceMs || draining) return await flush();
      timer ??= setTimeout(onTimer, coalesceMs - since);
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Yields frames; when none arrives for `idleMs` the stream is aborted and the loop throws a
 * FrameTimeoutError. Time the consumer spends between frames does not count. One timer serves
 * the whole stream (re-armed only when it fires), not one per frame.
 */
export async function* readStreamFrames(
  stream: Stream,
  idleMs: number,
  maxBytes = MAX_FRAME_BYTES,
): AsyncGenerator<unknown> {
  let timedOut: FrameTimeoutError | undefined;
  let lastFrame = performance.now();
  let consuming = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onTimer = () => {
    const quiet = performance.now() - lastFrame;
    if (consuming || quiet < idleMs) {
      timer = setTimeout(onTimer, consuming ? idleMs : idleMs - quiet);
      return;
    }
    timedOut = new FrameTimeoutError(`no message from the peer for ${idleMs} ms`);
    stream.abort(timedOut);
  };
  timer = setTimeout(onTimer, idleMs);
  try {
    for await (const frame of readFrames(stream, maxBytes)) {
      consuming = true;
      yield frame;
      consuming = false;
      lastFrame = performance.now();
    }
  } catch (err) {
    throw timedOut ?? err;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw timedOut;
}

/** The first frame of a stream; throws on timeout or when the stream ends without one. */
export async function readOneFrame(
  stream: Stream,
  timeoutMs: number,
  maxBytes = MAX_FRAME_BYTES,
): Promise<unknown> {
  for await (const frame of readStreamFrames(stream, timeoutMs, maxBytes)) return frame;
  throw new Error("the stream ended before its first message");
}

/** An AbortSignal that fires after `ms` or when `parent` does; call clear() when done. */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new FrameTimeoutError(`timed out after ${ms} ms`)), ms);
  const signal = parent ? AbortSignal.any([parent, ctrl.signal]) : ctrl.signal;
  return { signal, clear: () => clearTimeout(timer) };
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A peer id short enough for a log line. */
export function shortPeer(peerId: string): string {
  return peerId.length > 14 ? `${peerId.slice(0, 10)}…${peerId.slice(-4)}` : peerId;
}
