/**
 * `/grove/infer/1` (SPEC §5): one request per stream. The client sends one frame
 * `{model, messages|prompt, params}`; the server answers token frames, then one `done` or
 * `error`, and closes. Closing or resetting the stream (or losing the connection) cancels the
 * generation. The client never hangs: connecting and every gap between frames have a limit.
 */
import type { Stream } from "@libp2p/interface";
import type { MeshNode } from "./p2p-node.ts";
import { type Logger, silentLogger } from "./log.ts";
import {
  errorEvent,
  type InferenceService,
  type InferEvent,
  type InferRequest,
  ServiceError,
} from "./service.ts";
import {
  deadline,
  errorText,
  readOneFrame,
  readStreamFrames,
  shortPeer,
  writeFrame,
} from "./stream-frames.ts";

export const INFER_PROTOCOL = "/grove/infer/1";

export interface InferTimeouts {
  /** Dial, ticket exchange and stream open together. */
  connectMs?: number;
  /** Longest silence between two frames from the server (prompt processing included). */
  idleMs?: number;
}

const DEFAULTS = { connectMs: 10_000, idleMs: 30_000, requestMs: 10_000 };

export const WENT_AWAY = "the serving node went away mid-generation";

/** Answers `/grove/infer/1` streams from admitted members with `service`. */
export async function serveInfer(
  node: MeshNode,
  service: InferenceService,
  log: Logger = silentLogger,
): Promise<void> {
  await node.handle(INFER_PROTOCOL, (stream, remote) => answer(stream, remote.peerId));

  async function answer(stream: Stream, peerId: string) {
    let req: InferRequest;
    try {
      req = parseRequest(await readOneFrame(stream, DEFAULTS.requestMs));
    } catch (err) {
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("invalid_request", errorText(err));
      await writeFrame(stream, errorEvent(e)).catch(() => {});
      await stream.close().catch(() => {});
      return;
    }
    const ac = new AbortController();
    // The client closes or resets its end to cancel; a dropped connection closes the stream too.
    const cancel = () => ac.abort(new Error("the client closed the stream"));
    stream.addEventListener("close", cancel);
    stream.addEventListener("remoteCloseWrite", cancel);
    try {
      let ended = false;
      for await (const ev of service.infer(req, ac.signal)) {
        if (ac.signal.aborted) break;
        await writeFrame(stream, ev);
        if (ev.type !== "token") {
          ended = true;
          break;
        }
      }
      if (!ended && !ac.signal.aborted) {
        throw new ServiceError("unavailable", "the generation ended without a result");
      }
    } catch (err) {
      if (!ac.signal.aborted) {
        const e = err instanceof ServiceError
          ? err
          : new ServiceError("unavailable", `the serving node failed: ${errorText(err)}`);
        log.warn(`request from ${shortPeer(peerId)} failed: ${e.message}`);
        await writeFrame(stream, errorEvent(e)).catch(() => {});
      }
    } finally {
      stream.removeEventListener("close", cancel);
      stream.removeEventListener("remoteCloseWrite", cancel);
    }
    if (ac.signal.aborted) {
      log.info(`request from ${shortPeer(peerId)} cancelled: the stream closed`);
      stream.abort(new Error("cancelled"));
    } else {
      await stream.close().catch(() => {});
    }
  }
}

/**
 * One request on one peer. Yields the server's events; an `error` event ends it like `done`.
 * Aborting `signal` or leaving the loop resets the stream (the server stops generating). A peer
 * that cannot be reached, or whose stream dies or falls silent, throws ServiceError unavailable.
 */
export async function* callInfer(
  node: MeshNode,
  target: { peerId: string; addrs: string[] },
  req: InferRequest,
  signal: AbortSignal,
  timeouts: InferTimeouts = {},
): AsyncGenerator<InferEvent> {
  const idleMs = timeouts.idleMs ?? DEFAULTS.idleMs;
  const limit = deadline(timeouts.connectMs ?? DEFAULTS.connectMs, signal);
  let stream: Stream;
  try {
    stream = await node.dialProtocol(target.peerId, target.addrs, INFER_PROTOCOL, limit.signal);
  } catch (err) {
    if (signal.aborted) return;
    throw new ServiceError(
      "unavailable",
      `could not open a stream to serving node ${shortPeer(target.peerId)}: ${errorText(err)}`,
    );
  } finally {
    limit.clear();
  }
  const onAbort = () => stream.abort(new Error("the client cancelled the request"));
  signal.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  let received = 0;
  try {
    await writeFrame(stream, req);
    for await (const frame of readStreamFrames(stream, idleMs)) {
      const ev = parseEvent(frame);
      received++;
      if (ev.type !== "token") finished = true;
      yield ev;
      if (finished) return;
    }
    if (signal.aborted) return;
    throw new ServiceError("unavailable", wentAway(received));
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof ServiceError) throw err;
    throw new ServiceError("unavailable", `${wentAway(received)} (${errorText(err)})`);
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (finished) void stream.close().catch(() => {});
    else if (stream.status === "open") stream.abort(new Error("the client left the request"));
  }
}

function wentAway(received: number): string {
  return received > 0 ? WENT_AWAY : "the serving node went away before answering";
}

function parseRequest(frame: unknown): InferRequest {
  const r = frame as Partial<InferRequest> | null;
  if (typeof r !== "object" || r === null) throw new Error("the request is not a JSON object");
  if (typeof r.model !== "string" || r.model === "") throw new Error("request.model is missing");
  if ((r.messages === undefined) === (r.prompt === undefined)) {
    throw new Error("a request carries exactly one of messages and prompt");
  }
  if (r.messages !== undefined && !Array.isArray(r.messages)) {
    throw new Error("request.messages is not an array");
  }
  if (r.prompt !== undefined && typeof r.prompt !== "string") {
    throw new Error("request.prompt is not a string");
  }
  if (typeof r.params !== "object" || r.params === null || Array.isArray(r.params)) {
    throw new Error("request.params is not an object");
  }
  return r as InferRequest;
}

function parseEvent(frame: unknown): InferEvent {
  const ev = frame as { type?: unknown } | null;
  const type = ev?.type;
  if (type === "token" || type === "done" || type === "error") return ev as InferEvent;
  throw new ServiceError("unavailable", `the serving node sent an unknown message (${type})`);
}
