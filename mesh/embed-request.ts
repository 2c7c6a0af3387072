/**
 * An embeddings request on `/grove/infer/1` (docs/protocol.md#embeddings): its limits, checked by
 * the serving node on every request and by the client before it sends one, and how a vector
 * travels. A request is `{"model", "embed": {"input": [text | token ids, …], "pooling"?,
 * "truncate"?}}`; the answer is one `{"type": "embedding", "index", "embedding"}` frame per input,
 * in order, then `done` with the prompt tokens in its usage.
 *
 * A vector travels as base64 of its little-endian f32 values (OpenAI's `encoding_format:
 * "base64"`): exact, and ~5.3 bytes a dimension where JSON numbers take ~20, so one vector of
 * the widest models (16,384 dimensions: 87 KiB) fits an answer frame (256 KiB), and a request's
 * 256 inputs of it (22 MiB) the whole answer (64 MiB).
 */
import { Buffer } from "node:buffer";
import { clip, fail, isObject, isTokenId } from "./frame-checks.ts";
import type { EmbedRequest } from "./service.ts";

export const EMBED_LIMITS = {
  /**
   * Inputs per mesh request: 256 vectors of the widest models fit one answer (see above). The
   * HTTP routes take OpenAI's 2048 and send them in requests of this many.
   */
  maxInputs: 256,
  /** Dimensions of one vector: what fits an answer frame as base64, with room for the rest. */
  maxDimensions: 32_768,
} as const;

/** A frame as read off the wire → an embeddings request, or ServiceError invalid_request. */
export function parseEmbedRequest(frame: unknown): EmbedRequest {
  if (!isObject(frame)) fail("the request is not a JSON object");
  const { model, embed } = frame;
  if (typeof model !== "string" || model === "" || model.length > 512) {
    fail("request.model must be a string of 1 to 512 characters");
  }
  for (const key of Object.keys(frame)) {
    if (key !== "model" && key !== "embed") fail(`request.${clip(key)} is not part of embeddings`);
  }
  if (!isObject(embed)) fail("request.embed is not an object");
  for (const key of Object.keys(embed)) {
    if (!["input", "pooling", "truncate"].includes(key)) {
      fail(`embed.${clip(key)} is not supported by this serving node`);
    }
  }
  const { input, pooling, truncate } = embed;
  if (!Array.isArray(input) || input.length === 0 || input.length > EMBED_LIMITS.maxInputs) {
    fail(`embed.input must be an array of 1 to ${EMBED_LIMITS.maxInputs} inputs`);
  }
  input.forEach((item, i) => {
    if (typeof item === "string") return;
    if (!Array.isArray(item) || item.length === 0 || !item.every(isTokenId)) {
      fail(`embed.input[${i}] must be a string or a non-empty array of token ids`);
    }
  });
  if (pooling !== undefined && pooling !== "last" && pooling !== "mean") {
    fail('embed.pooling must be "last" or "mean"');
  }
  if (truncate !== undefined && typeof truncate !== "boolean") {
    fail("embed.truncate must be a boolean");
  }
  return frame as unknown as EmbedRequest;
}

/** Whether a request frame asks for embeddings (the others carry messages or a prompt). */
export function isEmbedFrame(frame: unknown): boolean {
  return isObject(frame) && frame.embed !== undefined;
}

/** A vector as base64 of its little-endian f32 values. */
export function encodeVector(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  return Buffer.from(bytes).toString("base64");
}

/** The vector of `encodeVector`, or undefined when the text is not one (bad base64, ragged). */
export function decodeVector(text: string): Float32Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
