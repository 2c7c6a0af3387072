/**
 * A request answered in one piece (embeddings, tokenizer requests) on the mesh's serving nodes
 * that advertise a feature: the router picks one, and one that fails is marked and another tried.
 * The answer is whole or nothing (the caller gets nothing before the last frame), so any failure
 * but the request's own fault is worth another node. remote-embed.ts and remote-tokenizer.ts say
 * what differs: the feature, what no able node means, and which faults are the request's own.
 */
import type { ServeTarget } from "../protocol/mod.ts";
import type { Router } from "./router.ts";
import { ServiceError, type ServiceErrorCode } from "./service.ts";

/** One request on one peer (bound to a node by role-peer.ts). */
export type OnePieceCall<Req, Res> = (
  target: { peerId: string; addrs: string[] },
  req: Req,
  signal: AbortSignal,
) => Promise<Res>;

export interface OnePieceDeps<Req, Res> {
  call: OnePieceCall<Req, Res>;
  router: Router;
  /** The model's entry targets now (each try reads them afresh). */
  targets: () => ServeTarget[];
  maxTries: number;
}

export interface OnePieceRoute {
  /** What a target must advertise in `features`. */
  feature: string;
  /** The error when no target of the model has the feature (`all`: how many serve it). */
  noneAble: (all: number) => ServiceError;
  /** Codes that are the request's own fault: another node would fail it the same. */
  ownFaults: readonly ServiceErrorCode[];
  /** The message when the caller cancels. */
  cancelled: string;
}

export async function routeOnePiece<Req extends { model: string }, Res>(
  deps: OnePieceDeps<Req, Res>,
  route: OnePieceRoute,
  req: Req,
  signal: AbortSignal,
): Promise<Res> {
  const able = () => deps.targets().filter((t) => t.features?.includes(route.feature));
  if (able().length === 0) throw route.noneAble(deps.targets().length);
  const tried = new Set<string>();
  const failures: string[] = [];
  while (tried.size < deps.maxTries && !signal.aborted) {
    const target = deps.router.pick(able(), tried);
    if (!target) break;
    tried.add(target.peerId);
    const end = deps.router.begin(target.peerId);
    try {
      // No markOk: the router's latency is a time to first event, which a whole answer is not.
      return await deps.call(target, req, signal);
    } catch (err) {
      if (signal.aborted) break;
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("unavailable", err instanceof Error ? err.message : String(err));
      if (route.ownFaults.includes(e.code)) throw e;
      // A full line is a healthy node under load: try another, but don't avoid it for 30 s.
      if (e.code !== "busy") deps.router.markFailed(target.peerId);
      failures.push(`${target.nodeName || target.peerId}: ${e.message}`);
    } finally {
      end();
    }
  }
  if (signal.aborted) throw new ServiceError("unavailable", route.cancelled);
  const what = failures.length === 0
    ? "every serving node of it failed in the last 30 s"
    : `tried ${failures.length}: ${failures.join("; ")}`;
  throw new ServiceError("unavailable", `No serving node for \`${req.model}\` answered (${what}).`);
}
