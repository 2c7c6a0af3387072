/**
 * A tokenizer request on the mesh's serving nodes (remote-service.ts hands it here once it knows
 * the model is offered elsewhere), as remote-embed.ts does for embeddings: a node that advertises
 * "tokenize" is picked by the router, and one that fails is marked and another tried. The answer
 * is whole or nothing, so any failure but the request's own fault is worth another node.
 */
import type { ServeTarget } from "../protocol/mod.ts";
import type { Router } from "./router.ts";
import { ServiceError, type TokenizerAnswer, type TokenizerRequest } from "./service.ts";

/** One tokenizer request on one peer (tokenizer-protocol.ts `callTokenizer`, bound to a node). */
export type TokenizerCall = (
  target: { peerId: string; addrs: string[] },
  req: TokenizerRequest,
  signal: AbortSignal,
) => Promise<TokenizerAnswer>;

export interface RemoteTokenizerDeps {
  call: TokenizerCall;
  router: Router;
  /** The model's entry targets now (each try reads them afresh). */
  targets: () => ServeTarget[];
  maxTries: number;
}

export async function routeTokenizer(
  deps: RemoteTokenizerDeps,
  req: TokenizerRequest,
  signal: AbortSignal,
): Promise<TokenizerAnswer> {
  const able = () => deps.targets().filter((t) => t.features?.includes("tokenize"));
  const all = deps.targets().length;
  if (able().length === 0) {
    // Nodes of an older Grove hold the tokenizer but take no such request: nothing to try.
    throw new ServiceError(
      "unavailable",
      `No serving node of \`${req.model}\` answers /tokenize, /detokenize or /props over the ` +
        `mesh yet (${all} ${all === 1 ? "node serves" : "nodes serve"} it, an older Grove).`,
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
      return await deps.call(target, req, signal);
    } catch (err) {
      if (signal.aborted) break;
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("unavailable", err instanceof Error ? err.message : String(err));
      if (e.code === "invalid_request") throw e;
      // A full line is a healthy node under load: try another, but don't avoid it for 30 s.
      if (e.code !== "busy") deps.router.markFailed(target.peerId);
      failures.push(`${target.nodeName || target.peerId}: ${e.message}`);
    } finally {
      end();
    }
  }
  if (signal.aborted) throw new ServiceError("unavailable", "the tokenizer request was cancelled");
  const what = failures.length === 0
    ? "every serving node of it failed in the last 30 s"
    : `tried ${failures.length}: ${failures.join("; ")}`;
  throw new ServiceError("unavailable", `No serving node for \`${req.model}\` answered (${what}).`);
}
