/**
 * Ollama's POST /api/embed (docs/http-api.md#ollama-api): `{"model", "input", "truncate"?,
 * "dimensions"?, "options"?, "keep_alive"?}` → `{"model", "embeddings": [[…]],
 * "total_duration", "load_duration", "prompt_eval_count"}`, the same vectors as /v1/embeddings.
 * `truncate` defaults to true, as Ollama's does: an input past the context is cut there.
 */
import type { InferenceService } from "../mesh/mod.ts";
import { invalidRequest, toHttpError } from "./http-error.ts";
import { modelOf } from "./ollama-request.ts";
import { embedInputs, inputsOf } from "./openai-embeddings.ts";
import { readJsonBody } from "./validate.ts";

export function ollamaEmbedRoute(service: InferenceService) {
  return async function embed(req: Request): Promise<Response> {
    const started = performance.now();
    try {
      const body = await readJsonBody(req);
      const model = modelOf(body);
      const input = inputsOf(body.input, "input");
      const { truncate = true, dimensions, options } = body;
      if (typeof truncate !== "boolean") {
        throw invalidRequest("truncate must be a boolean", "truncate");
      }
      if (
        dimensions !== undefined && !(Number.isSafeInteger(dimensions) && dimensions as number > 0)
      ) {
        throw invalidRequest("dimensions must be a positive integer", "dimensions");
      }
      // Runtime options (num_ctx, num_thread…) never change an embedding here; sampling has none.
      if (options !== undefined && (typeof options !== "object" || options === null)) {
        throw invalidRequest("options must be an object", "options");
      }
      const done = await embedInputs(service, model, input, { truncate, signal: req.signal });
      const width = done.data[0].length;
      if (dimensions !== undefined && dimensions !== width) {
        throw invalidRequest(
          `dimensions ${dimensions} cannot be honoured: \`${done.model}\` embeds in ${width}`,
          "dimensions",
        );
      }
      return Response.json({
        model: done.model,
        embeddings: done.data.map((v) => Array.from(v)),
        total_duration: Math.round((performance.now() - started) * 1e6),
        load_duration: 0,
        prompt_eval_count: done.promptTokens,
      });
    } catch (err) {
      const http = toHttpError(err);
      return Response.json({ error: http.message }, { status: http.status });
    }
  };
}
