/**
 * The worker side of prompt-encoder.ts: renders and tokenizes long prompts off the serving
 * node's event loop, with the same functions (prompt.ts) and a tokenizer built from the same
 * GGUF metadata, so its tokens are the ones the event loop would have computed.
 */
// inference/text.ts, not inference/mod.ts: this worker needs no engine (see text.ts).
import { type GgufValue, tokenizerFromMetadata } from "../inference/text.ts";
import { encodePrompt, type PromptModel } from "./prompt.ts";
import type { InferRequest } from "./service.ts";
import { ServiceError } from "./service.ts";

export type PromptJob =
  | {
    type: "init";
    metadata: Record<string, GgufValue>;
    template: string | undefined;
    ctxSize: number;
  }
  | { type: "encode"; id: number; req: InferRequest };

export type PromptReply =
  | { id: number; tokens: number[] }
  | { id: number; error: { code: ServiceError["code"] | "internal"; message: string } };

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<PromptJob>) => void) | null;
  postMessage(reply: PromptReply): void;
};

let model: PromptModel | undefined;

scope.onmessage = ({ data: job }) => {
  if (job.type === "init") {
    const { metadata, template, ctxSize } = job;
    model = { tokenizer: tokenizerFromMetadata(metadata), template, ctxSize };
    return;
  }
  try {
    if (!model) throw new Error("the prompt worker got a prompt before its model");
    scope.postMessage({ id: job.id, tokens: encodePrompt(model, job.req) });
  } catch (err) {
    const code = err instanceof ServiceError ? err.code : "internal";
    const message = err instanceof Error ? err.message : String(err);
    scope.postMessage({ id: job.id, error: { code, message } });
  }
};
