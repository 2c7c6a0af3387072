/**
 * A tokenizer request on the mesh's serving nodes (remote-service.ts hands it here once it knows
 * the model is offered elsewhere), as remote-embed.ts does for embeddings: a node that advertises
 * "tokenize" is picked by the router, and one that fails is marked and another tried
 * (route-one-piece.ts).
 */
import { type OnePieceCall, type OnePieceDeps, routeOnePiece } from "./route-one-piece.ts";
import { ServiceError, type TokenizerAnswer, type TokenizerRequest } from "./service.ts";

/** One tokenizer request on one peer (tokenizer-protocol.ts `callTokenizer`, bound to a node). */
export type TokenizerCall = OnePieceCall<TokenizerRequest, TokenizerAnswer>;

export type RemoteTokenizerDeps = OnePieceDeps<TokenizerRequest, TokenizerAnswer>;

export function routeTokenizer(
  deps: RemoteTokenizerDeps,
  req: TokenizerRequest,
  signal: AbortSignal,
): Promise<TokenizerAnswer> {
  return routeOnePiece(
    deps,
    {
      feature: "tokenize",
      // Nodes of an older Grove hold the tokenizer but take no such request: nothing to try.
      noneAble: (all) =>
        new ServiceError(
          "unavailable",
          `No serving node of \`${req.model}\` answers /tokenize, /detokenize or /props over the ` +
            `mesh yet (${all} ${all === 1 ? "node serves" : "nodes serve"} it, an older Grove).`,
        ),
      ownFaults: ["invalid_request"],
      cancelled: "the tokenizer request was cancelled",
    },
    req,
    signal,
  );
}
