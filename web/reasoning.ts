/**
 * The reasoning an answer's events carry apart from its text (gpt-oss's analysis channel,
 * mesh/tool-calls-stream.ts). Events may come from another member over the mesh, so a field that
 * is not a string counts as none.
 */
import type { DoneEvent, TokenEvent } from "../mesh/mod.ts";

/** A token's reasoning, "" when it has none. */
export function reasoningOf(event: TokenEvent): string {
  return typeof event.reasoning === "string" ? event.reasoning : "";
}

/** Reasoning held back to the end, "" when there is none. */
export function tailReasoningOf(done: DoneEvent): string {
  return typeof done.tail_reasoning === "string" ? done.tail_reasoning : "";
}
