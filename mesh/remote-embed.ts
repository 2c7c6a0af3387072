/**
 * An embeddings request on the mesh's serving nodes (remote-service.ts hands it here once it
 * knows the model is offered elsewhere): a node that advertises "embeddings" is picked by the
 * router, and one that fails is marked and another tried. An answer is whole or nothing (the
 * caller gets no vector before the last), so any failure but the request's own fault is worth
 * another node.
 */
import type { ServeTarget } from "../protocol/mod.ts";
import type { Router } from "./router.ts";
import { type EmbedRequest, type EmbedResult, ServiceError } from "./service.ts";

/** One embeddings request on one peer (embed-protocol.ts `callEmbed`, bound to a node). */
export type EmbedCall = (
  target: { peerId: string; addrs: string[] },
  req: EmbedRequest,
  signal: AbortSignal,
) => Promise<EmbedResult>;

export interface RemoteEmbedDeps {
  call: EmbedCall;
  router: Router;
  /** The model's entry targets now (each try reads them afresh). */
  targets: () => ServeTarget[];
  maxTries: number;
}

export async function routeEmbed(
  deps: RemoteEmbedDeps,
  req: EmbedRequest,
  signal: AbortSignal,
): Promise<EmbedResult> {
  const able = () => deps.targets().filter((t) => t.features?.includes("embeddings"));
  const all = deps.targets().length;
  if (able().length === 0) {
    throw new ServiceError(
      "invalid_request",
      `No serving node of \`${req.model}\` supports embeddings yet ` +
        `(${all} ${all === 1 ? "node serves" : "nodes serve"} it).`,
    );
  }
  const tried = new Set<string>();
  const failures: string[] = [];
  while (tried.size < deps.maxTries && !signal.aborted) {
    const target = deps.router.pick(able(), tried);
    if (!target) break;
    tried.add(target.peerId);
    const end = deps.router.begin(target.peerId);
    try {
      // No markOk: the router's latency is a time to first event, which a batch of vectors is not.
      return await deps.call(target, req, signal);
    } catch (err) {
      if (signal.aborted) break;
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("unavailable", err instanceof Error ? err.message : String(err));
      if (e.code === "invalid_request" || e.code === "context_length_exceeded") throw e;
      // A full line is a healthy node under load: try another, but don't avoid it for 30 s.
      if (e.code !== "busy") deps.router.markFailed(target.peerId);
      failures.push(`${target.nodeName || target.peerId}: ${e.message}`);
    } finally {
      end();
    }
  }
  if (signal.aborted) throw new ServiceError("unavailable", "the embeddings request was cancelled");
  const what = failures.length === 0
    ? "every serving node of it failed in the last 30 s"
    : `tried ${failures.length}: ${failures.join("; ")}`;
  throw new ServiceError(
    "unavailable",
    `No serving node for \`${req.model}\` answered (${what}).`,
  );
}
