/**
 * `/grove/stage/1`, the stage side (docs/protocol.md#grovestage1): one stream per coordinator
 * and plan runs one stage's layers for several sessions at once. The first frame opens the stage
 * (the host checks the plan and loads the range); then each `step` frame carries rows of one or
 * more sessions and is answered, in order, with their hidden states or (last stage) their picks.
 * A session holds one slot of the stage's batch (its KV cache) from its first row until `close`,
 * 60 s without a row, or the end of the stream.
 *
 * Errors: a frame that cannot be read or breaks the protocol gets an error frame naming what was
 * wrong, then the stream closes (freeing its sessions); a step that needs a slot when none is
 * free gets `busy` and changes nothing, and the stream goes on.
 *
 * The client side is stage-link.ts.
 */
import type { Stream } from "@libp2p/interface";
import { type Logger, silentLogger } from "../protocol/mod.ts";
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
  asRefusal,
  isObject,
  parseClose,
  parseOpen,
  parseStep,
  STAGE_PROTOCOL,
  type StageOpen,
  StageRefusal,
} from "./stage-messages.ts";
import { createStageRunner, type StageLease, type StageRunner } from "./stage-runner.ts";
import { errorText, shortPeer } from "./stream-frames.ts";

export { STAGE_PROTOCOL, StageRefusal };
export { localStageCall } from "./stage-runner.ts";
export type { StageLease } from "./stage-runner.ts";
export type {
  StageCall,
  StageErrorCode,
  StageOpen,
  StagePick,
  StageReady,
  StageSessionOpen,
  StageStepResult,
  StageStepRow,
} from "./stage-messages.ts";
export { openStageLink, StageFailedError } from "./stage-link.ts";
export type { StageFailure, StageLink, StageLinkOptions } from "./stage-link.ts";

/** What a stage node runs streams against (the split coordinator implements it). */
export interface StageHost {
  /**
   * Checks an open (sha256, plan id, candidates, range) and returns the stage to run, loading it
   * if needed; released when the stream ends. Throws StageRefusal (or any error with a stage
   * error `code`) to refuse; any other error is sent as `unavailable`.
   */
  open(req: StageOpen, from: { peerId: string }): Promise<StageLease>;
}

export interface ServeStageOptions {
  clock?: Clock;
  /** A session without a row for this long is freed. */
  idleMs?: number;
  /** How long a new stream may wait for its open frame. */
  openMs?: number;
}

const DEFAULTS = { idleMs: 60_000, openMs: 10_000 };

/** Answers `/grove/stage/1` streams from admitted members with the stages `host` opens. */
export async function serveStage(
  node: MeshNode,
  host: StageHost,
  log: Logger = silentLogger,
  options: ServeStageOptions = {},
): Promise<void> {
  await node.handle(
    STAGE_PROTOCOL,
    (stream, remote) =>
      runStream(stream, remote.peerId, host, log, {
        clock: options.clock ?? systemClock,
        idleMs: options.idleMs ?? DEFAULTS.idleMs,
        openMs: options.openMs ?? DEFAULTS.openMs,
      }),
  );
}

async function runStream(
  stream: Stream,
  peerId: string,
  host: StageHost,
  log: Logger,
  opts: Required<ServeStageOptions>,
): Promise<void> {
  const { clock } = opts;
  const who = shortPeer(peerId);
  let limit = MAX_STAGE_HEADER_BYTES;
  let lease: StageLease | undefined;
  let stage: StageRunner | undefined;
  let sweep: Timer | undefined;
  const openTimer = clock.setTimeout(
    () => stream.abort(new Error(`no open within ${opts.openMs} ms`)),
    opts.openMs,
  );
  // The timers go with the stream even while a step never ends (its sessions stay: the stage
  // may still be writing their caches).
  const stopTimers = () => {
    clock.clearTimeout(openTimer);
    if (sweep !== undefined) clock.clearInterval(sweep);
  };
  stream.addEventListener("close", stopTimers, { once: true });
  try {
    for await (const { header, payload } of readStageFrames(stream, () => limit)) {
      if (!isObject(header)) throw new StageRefusal("invalid_request", "a header is not an object");
      if (!stage) {
        if (header.type !== "open") {
          throw new StageRefusal("invalid_request", `the first frame must be an open`);
        }
        clock.clearTimeout(openTimer);
        const req = parseOpen(header);
        lease = await openLease(host, req, peerId);
        stage = createStageRunner(lease.batch, clock);
        const ready = stage.ready;
        limit = stageFrameLimit(ready.maxRows, ready.dim);
        sweep = clock.setInterval(() => stage?.sweep(opts.idleMs), opts.idleMs / 4);
        await send(stream, { type: "ready", ...ready });
        log.info(
          `stage ${ready.range.join("–")} opened by ${who} (plan ${req.planId.slice(0, 8)})`,
        );
        continue;
      }
      switch (header.type) {
        case "step": {
          const { seq, rows } = parseStep(header);
          try {
            const out = await stage.step(rows, payload);
            if ("hidden" in out) await send(stream, { type: "hidden", seq }, out.hidden);
            else await send(stream, { type: "picks", seq, picks: out.picks });
          } catch (err) {
            if (!(err instanceof StageRefusal && err.code === "busy")) throw withSeq(err, seq);
            await send(stream, { type: "error", code: "busy", message: err.message, seq });
          }
          break;
        }
        case "close":
          stage.close(parseClose(header));
          break;
        default:
          throw new StageRefusal("invalid_request", `unknown frame type ${String(header.type)}`);
      }
    }
    await stream.close().catch(() => {});
  } catch (err) {
    const refusal = refusalOf(err);
    if (refusal && stream.status === "open" && stream.writeStatus === "writable") {
      log.warn(`stage stream from ${who} ended: ${refusal.code}: ${refusal.message}`);
      // A peer that does not read gets 2 s for its reason; then the stream is cut.
      const signal = AbortSignal.timeout(2000);
      try {
        const seq = seqOf(err);
        const frame = { type: "error", code: refusal.code, message: refusal.message, ...seq };
        await send(stream, frame, undefined, signal);
        await stream.close({ signal });
      } catch { /* the stream went: it is aborted below */ }
    }
    if (stream.status === "open") stream.abort(new Error(errorText(err)));
  } finally {
    stream.removeEventListener("close", stopTimers);
    stopTimers();
    stage?.freeAll();
    lease?.release();
  }
}

async function openLease(host: StageHost, req: StageOpen, peerId: string): Promise<StageLease> {
  let lease: StageLease;
  try {
    lease = await host.open(req, { peerId });
  } catch (err) {
    throw asRefusal(err) ??
      new StageRefusal("unavailable", `this stage cannot run: ${errorText(err)}`);
  }
  const { layerStart, layerEnd } = lease.batch;
  if (layerStart !== req.range[0] || layerEnd !== req.range[1]) {
    lease.release();
    const held = `${layerStart}–${layerEnd}`;
    throw new StageRefusal("plan_mismatch", `this node runs layers ${held}, not ${req.range}`);
  }
  return lease;
}

/** Sends one frame; a peer that does not read holds the next frame back, not our memory. */
async function send(
  stream: Stream,
  header: unknown,
  payload?: Float32Array,
  signal?: AbortSignal,
): Promise<void> {
  if (!stream.send(encodeStageFrame(header, payload))) await stream.onDrain({ signal });
}

/** What the stream answers for an error: a reason for the peer, or nothing (the stream died). */
function refusalOf(err: unknown): StageRefusal | undefined {
  if (err instanceof StageRefusal) return err;
  if (err instanceof StageFrameError) return new StageRefusal("invalid_request", err.message);
  if (err instanceof StepError) return err.refusal;
  return undefined;
}

class StepError extends Error {
  constructor(readonly refusal: StageRefusal, readonly seq: number) {
    super(refusal.message);
  }
}

function withSeq(err: unknown, seq: number): StepError {
  const refusal = asRefusal(err) ??
    new StageRefusal("unavailable", `step ${seq} failed: ${errorText(err)}`);
  return new StepError(refusal, seq);
}

function seqOf(err: unknown): { seq?: number } {
  return err instanceof StepError ? { seq: err.seq } : {};
}
