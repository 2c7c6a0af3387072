/**
 * A conversation's name for prefix-affinity routing (router.ts): the same for every turn of it,
 * read from what its turns share at the start, so the client node can send each turn to the node
 * whose cache holds the last one. A chat: the model, its system messages and its first user
 * message (later turns only add messages after them); a plain prompt: the model and its first
 * PROMPT_CHARS characters (an agent's growing prompt keeps its start). Hashed: only equality
 * matters, and a collision only routes a request to a node that is fine too.
 *
 * Only a request that goes on from an earlier one (`continues`) is steered by it: a chat with an
 * answer in it, a prompt longer than PROMPT_CHARS. An opening turn, or a short prompt sent again
 * and again, is spread by load as any request.
 */
import type { InferRequest } from "./service.ts";

/** Characters of a plain prompt that name its conversation. */
export const PROMPT_CHARS = 1024;

export function affinityKey(req: InferRequest): string | undefined {
  if (req.messages) {
    const first = req.messages.findIndex((m) => m.role === "user");
    if (first < 0) return undefined;
    const opening = req.messages.slice(0, first + 1).map((m) => [m.role, m.content]);
    return `${req.model}\n${hash(JSON.stringify(opening))}`;
  }
  if (typeof req.prompt !== "string" || req.prompt.length === 0) return undefined;
  return `${req.model}\n${hash(req.prompt.slice(0, PROMPT_CHARS))}`;
}

/** Whether `req` may go on from an earlier request of its conversation (see above). */
export function continues(req: InferRequest): boolean {
  if (req.messages) return req.messages.some((m) => m.role === "assistant");
  return typeof req.prompt === "string" && req.prompt.length > PROMPT_CHARS;
}

/** cyrb53: a 53-bit string hash, as hex. */
function hash(text: string): string {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
}
