/**
 * An embeddings request on the mesh's serving nodes (remote-service.ts hands it here once it
 * knows the model is offered elsewhere): a node that advertises "embeddings" is picked by the
 * router, and one that fails is marked and another tried (route-one-piece.ts).
 */
import { type OnePieceCall, type OnePieceDeps, routeOnePiece } from "./route-one-piece.ts";
import { type EmbedRequest, type EmbedResult, ServiceError } from "./service.ts";

/** One embeddings request on one peer (embed-protocol.ts `callEmbed`, bound to a node). */
export type EmbedCall = OnePieceCall<EmbedRequest, EmbedResult>;

export type RemoteEmbedDeps = OnePieceDeps<EmbedRequest, EmbedResult>;

export function routeEmbed(
  deps: RemoteEmbedDeps,
  req: EmbedRequest,
  signal: AbortSignal,
): Promise<EmbedResult> {
  return routeOnePiece(
    deps,
    {
      feature: "embeddings",
      noneAble: (all) =>
        new ServiceError(
          "invalid_request",
          `No serving node of \`${req.model}\` supports embeddings yet ` +
            `(${all} ${all === 1 ? "node serves" : "nodes serve"} it).`,
        ),
      ownFaults: ["invalid_request", "context_length_exceeded"],
      cancelled: "the embeddings request was cancelled",
    },
    req,
    signal,
  );
}
