/**
 * `/grove/stage/1`, the coordinator side (docs/protocol.md#grovestage1): a link to one remote
 * stage, over one stream, through which the coordinator's sessions step together. Steps may be
 * sent before the previous ones are answered; the stage answers them in order.
 *
 * A link never hangs its caller: a step not answered within its deadline (counted from when the
 * step before it was answered), a stream that closes or resets, or an answer that breaks the
 * protocol rejects every pending step with a StageFailedError and leaves the link dead. That is
 * how a coordinator learns that a stage process was killed (the stream resets at once) or stopped
 * (the deadline passes) and moves its sessions to a new plan.
 */
import type { Stream } from "@libp2p/interface";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import type { MeshNode } from "./p2p-node.ts";
import {
  encodeStageFrame,
  MAX_STAGE_HEADER_BYTES,
  readStageFrames,
  StageFrameError,
  stageFrameLimit,
} from "./stage-frames.ts";
import {
  errorCode,
  isObject,
  parsePicks,
  parseReady,
  STAGE_PROTOCOL,
  type StageCall,
  type StageErrorCode,
  type StageOpen,
  type StagePick,
  type StageReady,
  StageRefusal,
  type StageStepResult,
  type StageStepRow,
} from "./stage-messages.ts";
import { deadline, errorText, shortPeer } from "./stream-frames.ts";

export interface StageLinkOptions {
  /** Aborting it before the link is open fails the open; after, it destroys the link. */
  signal?: AbortSignal;
  /** How long a step of `rows` rows may take (default: 3 s + 10 ms a row). */
  stepTimeoutMs?: (rows: number) => number;
  /** Dial, open and (when the stage must load its layers first) loading, together. */
  openTimeoutMs?: number;
  clock?: Clock;
}

/** Why a link failed: the stage's own error code, or what this side saw. */
export type StageFailure = StageErrorCode | "timeout" | "closed" | "protocol" | "unreachable";

export class StageFailedError extends Error {
  override name = "StageFailedError";
  constructor(readonly peerId: string, readonly code: StageFailure, message: string) {
    super(message);
  }
}

/**
 * A remote stage. Its steps reject with StageFailedError; after any failure but `busy` (no slot
 * was free for a new session, and the step changed nothing) the link is dead.
 */
export interface StageLink extends StageCall, StageReady {
  /** True once a failure or destroy() ended the link; its steps then reject at once. */
  readonly dead: boolean;
  /** What ended the link, once dead. */
  readonly failure: StageFailedError | undefined;
}

const OPEN_MS = 30_000;
const defaultStepMs = (rows: number) => 3000 + 10 * rows;

interface Pending {
  seq: number;
  rows: readonly StageStepRow[];
  count: number;
  resolve(result: StageStepResult): void;
  reject(err: StageFailedError): void;
}

export async function openStageLink(
  node: MeshNode,
  target: { peerId: string; addrs: string[] },
  open: StageOpen,
  opts: StageLinkOptions = {},
): Promise<StageLink> {
  const peer = target.peerId;
  const at = `the stage ${open.range.join("–")} on ${shortPeer(peer)}`;
  const openMs = opts.openTimeoutMs ?? OPEN_MS;
  const limit = deadline(openMs, opts.signal);
  let stream: Stream;
  try {
    stream = await node.dialProtocol(peer, target.addrs, STAGE_PROTOCOL, limit.signal);
  } catch (err) {
    limit.clear();
    throw new StageFailedError(peer, "unreachable", `could not reach ${at}: ${errorText(err)}`);
  }
  let frameLimit = MAX_STAGE_HEADER_BYTES;
  const frames = readStageFrames(stream, () => frameLimit);
  const cut = () => stream.abort(new Error(`no answer to the open within ${openMs} ms`));
  limit.signal.addEventListener("abort", cut, { once: true });
  let ready: StageReady;
  try {
    stream.send(encodeStageFrame({ type: "open", ...open, hidden: "f32" }));
    const first = await frames.next();
    if (first.done) throw new Error("the stream ended before an answer");
    ready = readyOf(first.value.header, open, at, peer);
  } catch (err) {
    if (stream.status === "open") stream.abort(new Error("open failed"));
    if (err instanceof StageFailedError || err instanceof StageRefusal) throw err;
    const timedOut = limit.signal.aborted && !opts.signal?.aborted;
    const why = timedOut ? `no answer within ${openMs} ms` : errorText(err);
    throw new StageFailedError(peer, timedOut ? "timeout" : "closed", `${at} did not open: ${why}`);
  } finally {
    limit.signal.removeEventListener("abort", cut);
    limit.clear();
  }
  frameLimit = stageFrameLimit(ready.maxRows, ready.dim);
  return startLink(stream, frames, ready, peer, at, opts);
}

function readyOf(header: unknown, open: StageOpen, at: string, peer: string): StageReady {
  if (isObject(header) && header.type === "error") {
    const code = errorCode(header.code);
    throw new StageRefusal(code, `${at} refused the open: ${code}: ${String(header.message)}`);
  }
  if (!isObject(header) || header.type !== "ready") {
    throw new StageFailedError(peer, "protocol", `${at} answered the open with no ready`);
  }
  try {
    const ready = parseReady(header);
    if (ready.range[0] !== open.range[0] || ready.range[1] !== open.range[1]) {
      throw new Error(`it runs layers ${ready.range.join("–")}`);
    }
    return ready;
  } catch (err) {
    throw new StageFailedError(peer, "protocol", `${at} answered a bad ready: ${errorText(err)}`);
  }
}

function startLink(
  stream: Stream,
  frames: AsyncGenerator<{ header: unknown; payload: Float32Array }>,
  ready: StageReady,
  peerId: string,
  at: string,
  opts: StageLinkOptions,
): StageLink {
  const clock = opts.clock ?? systemClock;
  const stepMs = opts.stepTimeoutMs ?? defaultStepMs;
  const first = ready.range[0] === 0;
  const pending: Pending[] = [];
  let timer: Timer | undefined;
  let failure: StageFailedError | undefined;
  let nextSeq = 0;

  function fail(code: StageFailedError["code"], message: string): StageFailedError {
    if (failure) return failure;
    failure = new StageFailedError(peerId, code, message);
    clock.clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    for (const p of pending.splice(0)) p.reject(failure);
    if (stream.status === "open") stream.abort(failure);
    return failure;
  }
  const onAbort = () => fail("closed", `the link to ${at} was aborted`);
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });

  /** The oldest pending step's deadline runs from now: the stage answers in order. */
  function armHead() {
    clock.clearTimeout(timer);
    timer = undefined;
    const head = pending[0];
    if (!head) return;
    const ms = stepMs(head.count);
    timer = clock.setTimeout(() => {
      fail("timeout", `${at} did not answer step ${head.seq} (${head.count} rows) within ${ms} ms`);
    }, ms);
  }

  function answerOf(header: Record<string, unknown>, payload: Float32Array, head: Pending) {
    if (header.type === "hidden") {
      const expected = head.count * ready.dim;
      if (payload.length !== expected) {
        throw new Error(`${payload.length} hidden values for ${head.count} rows`);
      }
      return { hidden: payload };
    }
    if (header.type !== "picks") throw new Error(`an unknown frame type ${String(header.type)}`);
    const picks = parsePicks(header);
    if (picks.length !== head.rows.length) {
      throw new Error(`${picks.length} picks for ${head.rows.length} rows`);
    }
    picks.forEach((p: StagePick | null, i) => {
      const row = head.rows[i];
      if ((p === null) === (row.sample === true) || (p && p.session !== row.session)) {
        throw new Error(`pick ${i} does not answer row ${i} (session ${row.session})`);
      }
    });
    return { picks };
  }

  async function read() {
    try {
      for await (const { header, payload } of frames) {
        if (failure) return;
        if (!isObject(header)) throw new StageFrameError("a header is not an object");
        const head = pending[0];
        if (header.type === "error") {
          const code = errorCode(header.code);
          const message = `${at} failed: ${code}: ${String(header.message)}`;
          if (code === "busy" && head && header.seq === head.seq) {
            pending.shift();
            head.reject(new StageFailedError(peerId, code, message));
            armHead();
            continue;
          }
          fail(code, message);
          return;
        }
        if (!head || header.seq !== head.seq) {
          const due = head ? `step ${head.seq}` : "no step";
          throw new StageFrameError(`it answered seq ${String(header.seq)} while ${due} was due`);
        }
        let result: StageStepResult;
        try {
          result = answerOf(header, payload, head);
        } catch (err) {
          throw new StageFrameError(`a bad answer to step ${head.seq}: ${errorText(err)}`);
        }
        pending.shift();
        head.resolve(result);
        armHead();
      }
      fail("closed", `${at} closed the stream`);
    } catch (err) {
      if (err instanceof StageFrameError) {
        fail("protocol", `${at} broke the protocol: ${err.message}`);
      } else fail("closed", `the stream to ${at} failed: ${errorText(err)}`);
    }
  }
  void read();

  return {
    ...ready,
    peerId,
    get dead() {
      return failure !== undefined;
    },
    get failure() {
      return failure;
    },
    step(rows, hidden) {
      if (failure) return Promise.reject(failure);
      const count = rows.reduce((n, r) => n + r.tokens.length, 0);
      const expected = first ? 0 : count * ready.dim;
      if (rows.length === 0 || count > ready.maxRows) {
        return Promise.reject(
          new RangeError(`a step has 1–${ready.maxRows} rows for ${at}; got ${count}`),
        );
      }
      if ((hidden?.length ?? 0) !== expected) {
        return Promise.reject(
          new RangeError(
            `${count} rows need ${expected} hidden values; got ${hidden?.length ?? 0}`,
          ),
        );
      }
      const seq = nextSeq++;
      try {
        stream.send(encodeStageFrame({ type: "step", seq, rows }, first ? undefined : hidden));
      } catch (err) {
        return Promise.reject(fail("closed", `could not send to ${at}: ${errorText(err)}`));
      }
      return new Promise((resolve, reject) => {
        pending.push({ seq, rows, count, resolve, reject });
        if (pending.length === 1) armHead();
      });
    },
    close(sessions) {
      if (failure || sessions.length === 0) return;
      try {
        stream.send(encodeStageFrame({ type: "close", sessions }));
      } catch (err) {
        fail("closed", `could not send to ${at}: ${errorText(err)}`);
      }
    },
    destroy() {
      fail("closed", `the link to ${at} was closed by this node`);
    },
  };
}
