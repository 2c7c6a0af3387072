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

/** Sends one frame at once (no batching: each token must leave now); waits only on backpressure. */
export async function writeFrame(stream: Stream, value: unknown): Promise<void> {
  if (!stream.send(encodeFrame(value))) await stream.onDrain();
}

/**
 * Yields frames; when none arrives for `idleMs` the stream is aborted and the loop throws a
 * FrameTimeoutError. Time the consumer spends between frames does not count.
 */
export async function* readStreamFrames(
  stream: Stream,
  idleMs: number,
  maxBytes = MAX_FRAME_BYTES,
): AsyncGenerator<unknown> {
  let timedOut: FrameTimeoutError | undefined;
  const onIdle = () => {
    timedOut = new FrameTimeoutError(`no message from the peer for ${idleMs} ms`);
    stream.abort(timedOut);
  };
  let timer = setTimeout(onIdle, idleMs);
  try {
    for await (const frame of readFrames(stream, maxBytes)) {
      clearTimeout(timer);
      yield frame;
      timer = setTimeout(onIdle, idleMs);
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
