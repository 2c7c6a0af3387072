/**
 * Length-prefixed JSON frames (protocol/framing) over libp2p 3 streams, with the timeouts a mesh
 * stream needs so a silent peer turns into an error instead of a hang.
 */
import type { Stream } from "@libp2p/interface";
import { encodeFrame, readFrames } from "../protocol/mod.ts";

/**
 * Liveness of a stream with a request in flight (docs/protocol.md#inference): the answering side
 * sends some frame at least every ALIVE_MS, from a timer that never waits on the engine, and the
 * asking side counts a peer silent for DEAD_MS as dead (frozen, gone, or cut off): three missed
 * beats, so one slow timer on a busy machine is not a death.
 */
export const ALIVE_MS = 1000;
export const DEAD_MS = 3000;

/** The default cap on one frame: that of a request, the largest frame the mesh carries. */
const MAX_FRAME_BYTES = 8 * 1024 * 1024;

/**
 * A `/grove/infer/1` request, which carries a whole prompt or chat. The largest contexts served
 * (128 Ki tokens) hold ~0.5 MiB of ordinary text at ~4 bytes a token; 8 MiB leaves 16 times that
 * for code, other scripts and JSON escapes. A prompt that long but beyond its node's context is
 * refused by its length at once (prompt.ts), so the cap bounds memory, not time.
 */
export const MAX_REQUEST_FRAME_BYTES = MAX_FRAME_BYTES;

/**
 * One answer frame. The largest honest one is a token with 20 alternatives whose pieces are all
 * among the longest tokens (~128 characters, up to 6 bytes each as JSON escapes): ~32 KiB with
 * the text held back for a stop string.
 */
export const MAX_EVENT_FRAME_BYTES = 256 * 1024;

/**
 * All frames of one answer together, which a client node holds whole for a non-stream answer:
 * ~1 KiB a token with 20 alternatives, ~80 bytes without, so 64 MiB is a 64 Ki-token answer
 * with logprobs, or far past any context without.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * The time and timers a limit runs on; tests pass a fake one to play a starved event loop.
 */
export interface LimitClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Resolves once I/O that is already waiting (bytes in the socket) had its turn. */
  yieldToIo(): Promise<void>;
}

export const realClock: LimitClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
  // Two macrotask turns: the read that completes in the first may hand its bytes on in the next.
  yieldToIo: () => new Promise((r) => setTimeout(() => setTimeout(r, 0), 0)),
};

/** A timer this much late is the loop's ordinary jitter, not starvation. */
const JITTER_MS = 20;

export interface PatientTimerInit {
  /** When the wait began: the last sign of life; the limit counts from it (default: now). */
  since?: () => number;
  /** While true, the limit waits (the reader is busy with what arrived). */
  holdOff?: () => boolean;
  clock?: LimitClock;
}

/**
 * Calls `expire` once `ms` passed since `since()` with no sign of life, not counting time this
 * process was starved. Every limit on a peer (a silence, a dial, the ticket exchange, a ping)
 * judges the peer by what this process has read; on a loaded machine this process' timers fire
 * late and the peer's frames wait unread behind other work, so a plain timer would blame the
 * peer. Here, when the limit is up, the timer first yields once to waiting I/O and looks at
 * `since()` again; and when it fired late, the limit is extended by that lateness (in all by at
 * most `ms`, so a dead peer is still found on a starved machine) for what was read late to come
 * through. On an idle machine it expires on time: a truly silent peer is found in `ms`. Returns
 * a function that cancels it.
 */
export function patientTimer(
  ms: number,
  expire: () => void,
  init: PatientTimerInit = {},
): () => void {
  const clock = init.clock ?? realClock;
  const started = clock.now();
  const since = init.since ?? (() => started);
  let from = since();
  /** Extensions granted since `from` for this process' own lateness. */
  let extended = 0;
  let due = 0;
  let handle: unknown;
  let cancelled = false;

  const arm = (wait: number) => {
    due = clock.now() + wait;
    handle = clock.setTimeout(() => void fire(), wait);
  };
  async function fire(): Promise<void> {
    const late = clock.now() - due;
    await clock.yieldToIo();
    if (cancelled) return;
    const last = since();
    if (last !== from) [from, extended] = [last, 0];
    if (init.holdOff?.()) return arm(ms);
    const left = from + ms + extended - clock.now();
    if (left > 0) return arm(left);
    if (late > JITTER_MS && extended < ms) {
      const more = Math.min(late, ms - extended);
      extended += more;
      return arm(more);
    }
    cancelled = true;
    expire();
  }
  arm(Math.max(0, from + ms - clock.now()));
  return () => {
    cancelled = true;
    clock.clearTimeout(handle);
  };
}

export class FrameTimeoutError extends Error {
  override name = "FrameTimeoutError";
}

/** The peer sent more bytes on one stream than the reader's budget. */
export class FrameBudgetError extends Error {
  override name = "FrameBudgetError";
}

/** The stream ended cleanly before its first frame (an unused spare stream, say). */
export class StreamEndedError extends Error {
  override name = "StreamEndedError";
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
 * Yields frames; when the peer sends nothing for `idleMs` the stream is aborted and the loop
 * throws a FrameTimeoutError. Any bytes count as a sign of life (a large frame arriving slowly
 * too), time the consumer spends between frames does not count, and neither does time this
 * process was starved (`patientTimer`). One timer serves the whole stream, not one per frame. A
 * frame declared over `maxBytes` is refused before it is read; past `budgetBytes` on the whole
 * stream the loop throws a FrameBudgetError (counted per chunk the stream delivers, not per
 * frame).
 */
export async function* readStreamFrames(
  stream: Stream,
  idleMs: number,
  maxBytes = MAX_FRAME_BYTES,
  budgetBytes = Infinity,
  clock: LimitClock = realClock,
): AsyncGenerator<unknown> {
  let timedOut: FrameTimeoutError | undefined;
  let heard = clock.now();
  let consuming = false;
  const cancel = patientTimer(idleMs, () => {
    timedOut = new FrameTimeoutError(`no message from the peer for ${idleMs} ms`);
    stream.abort(timedOut);
  }, { since: () => heard, holdOff: () => consuming, clock });
  try {
    const source = heeded(stream, budgetBytes, () => heard = clock.now());
    for await (const frame of readFrames(source, maxBytes)) {
      consuming = true;
      yield frame;
      consuming = false;
      heard = clock.now();
    }
  } catch (err) {
    throw timedOut ?? err;
  } finally {
    cancel();
  }
  if (timedOut) throw timedOut;
}

type Chunk = Uint8Array | { subarray(): Uint8Array };

/** The stream's chunks, each noted as it arrives, within `budget` bytes in all. */
async function* heeded(source: AsyncIterable<Chunk>, budget: number, arrived: () => void) {
  let total = 0;
  for await (const chunk of source) {
    arrived();
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    total += bytes.length;
    if (total > budget) throw new FrameBudgetError(`more than ${budget} bytes on one stream`);
    yield bytes;
  }
}

/** The first frame of a stream; throws on timeout or when the stream ends without one. */
export async function readOneFrame(
  stream: Stream,
  timeoutMs: number,
  maxBytes = MAX_FRAME_BYTES,
): Promise<unknown> {
  for await (const frame of readStreamFrames(stream, timeoutMs, maxBytes)) return frame;
  throw new StreamEndedError("the stream ended before its first message");
}

/**
 * `promise`, or the signal's reason once it aborts; the promise itself goes on (a yamux ping, a
 * circuit reservation: cancelling them would do harm, waiting longer would not help).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/**
 * An AbortSignal that fires after `ms` of this process' running time (`patientTimer`: a starved
 * process does not blame the peer) or when `parent` does; call clear() when done.
 */
export function deadline(
  ms: number,
  parent?: AbortSignal,
  clock: LimitClock = realClock,
): { signal: AbortSignal; clear(): void } {
  const ctrl = new AbortController();
  const clear = patientTimer(
    ms,
    () => ctrl.abort(new FrameTimeoutError(`timed out after ${ms} ms`)),
    { clock },
  );
  const signal = parent ? AbortSignal.any([parent, ctrl.signal]) : ctrl.signal;
  return { signal, clear };
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A peer id short enough for a log line. */
export function shortPeer(peerId: string): string {
  return peerId.length > 14 ? `${peerId.slice(0, 10)}…${peerId.slice(-4)}` : peerId;
}
