/**
 * The serving side of tool calling: a chat request with tools runs with its plan's constraint
 * (inference/tool-calls/plan.ts: a forced call is grammar-constrained), and its answer is read
 * as it streams. Tokens that write a call come out with empty text; each call, once whole,
 * becomes a `tool_call` event (id `call_…`, a name the request offered, arguments as JSON text of
 * an object); a malformed call comes out as the text it was; the answer ends with finish_reason
 * `tool_calls` when it made calls. With `parallel_tool_calls: false` only the first call counts.
 * The prompt side (mesh/prompt.ts) renders the same plan through the model's template.
 *
 * gpt-oss's harmony output is read even without tools: its analysis channel comes out as
 * `reasoning` on the token events (and `tail_reasoning` on done), apart from the answer's text,
 * as llama.cpp's server gives it (`reasoning_content`).
 */
import {
  createToolCallParser,
  detectToolFormat,
  HARMONY_MARKERS,
  type ParsedToolCall,
  type Tokenizer,
  TOOL_MARKERS,
  type ToolCallPlan,
  toolCallPlan,
} from "../inference/text.ts";
import { compileConstraint } from "./constraint-grammar.ts";
import type { DoneEvent, InferEvent, InferRequest, TokenEvent, ToolCallEvent } from "./service.ts";

export interface ToolCallsInit {
  /** The model's GGUF `tokenizer.chat_template`. */
  template: string | undefined;
  tokenizer: Pick<Tokenizer, "encode" | "decode">;
  /** Whether the engine can hold its output to a grammar (request feature "constraint"). */
  constrains: boolean;
  /** A new call id; default `call_` and 24 random letters and digits, as OpenAI's. */
  newId?: () => string;
}

/** Runs one request on the engine; the tool layer wraps it. */
export type RunRequest = (req: InferRequest) => AsyncIterable<InferEvent>;

export type ToolCallLayer = (req: InferRequest, run: RunRequest) => AsyncIterable<InferEvent>;

export function createToolCallLayer(init: ToolCallsInit): ToolCallLayer {
  const harmony = detectToolFormat(init.template) === "harmony";
  const markers = markerTokens(init.tokenizer, harmony ? HARMONY_MARKERS : TOOL_MARKERS);
  const newId = init.newId ?? callId;
  return (req, run) => {
    if (!req.messages) return run(req);
    const plan = toolCallPlan(init.template, req) ?? (harmony ? REASONING_ONLY : undefined);
    if (!plan) return run(req);
    return readToolCalls(run(withConstraint(req, plan, init.constrains)), plan, markers, newId);
  };
}

/** A harmony answer offered no tools: its reasoning is still read apart (and no call counts). */
const REASONING_ONLY: ToolCallPlan = {
  format: "harmony",
  offered: [],
  names: [],
  prefill: "",
  forced: false,
  parallel: false,
};

/**
 * The plan's schema as the request's constraint: a forced call's always (a node that cannot
 * constrain refuses it, request-features.ts, and a schema the grammar cannot hold is a 400 naming
 * the keyword); the generic format's reply-or-call schema is a help, not a demand: only where the
 * engine constrains, the client asked for no format of its own, and the grammar can hold it.
 */
function withConstraint(req: InferRequest, plan: ToolCallPlan, constrains: boolean): InferRequest {
  if (!plan.schema) return req;
  const constraint = { type: "json_schema" as const, schema: plan.schema };
  if (!plan.forced) {
    if (!constrains || req.params.constraint !== undefined) return req;
    try {
      compileConstraint(constraint); // kept compiled for the run that follows
    } catch {
      return req;
    }
  }
  return { ...req, params: { ...req.params, constraint } };
}

/** The answer's events with the calls read out of its text. */
export async function* readToolCalls(
  events: AsyncIterable<InferEvent>,
  plan: ToolCallPlan,
  markers: ReadonlyMap<number, string>,
  newId: () => string = callId,
): AsyncGenerator<InferEvent> {
  const parser = createToolCallParser(plan);
  let made = 0;
  function* calls(parsed: ParsedToolCall[]): Generator<ToolCallEvent> {
    for (const call of parsed) {
      if (made > 0 && !plan.parallel) continue;
      yield { type: "tool_call", index: made++, id: newId(), ...call };
    }
  }
  for await (const event of events) {
    if (event.type === "token") {
      // A marker that is a control token decodes to nothing; the parser needs to see it.
      const text = event.text === "" ? markers.get(event.id) ?? "" : event.text;
      const step = parser.push(text);
      const out: TokenEvent = { ...event, text: step.text };
      if (step.reasoning) out.reasoning = step.reasoning;
      yield out;
      yield* calls(step.calls);
    } else if (event.type === "done") {
      const held = parser.push(event.tail ?? "");
      const last = parser.end();
      yield* calls([...held.calls, ...last.calls]);
      const done: DoneEvent = { ...event };
      delete done.tail;
      const tail = held.text + last.text;
      if (tail !== "") done.tail = tail;
      const reasoning = (held.reasoning ?? "") + (last.reasoning ?? "");
      if (reasoning !== "") done.tail_reasoning = reasoning;
      if (made > 0) done.finish_reason = "tool_calls";
      yield done;
    } else yield event;
  }
}

/**
 * Control tokens that spell a call marker (Mistral's [TOOL_CALLS], Llama's <|python_tag|>;
 * harmony's <|channel|>, <|message|> and kin).
 */
export function markerTokens(
  tokenizer: Pick<Tokenizer, "encode" | "decode">,
  markers: readonly string[] = TOOL_MARKERS,
): Map<number, string> {
  const out = new Map<number, string>();
  for (const marker of markers) {
    const ids = tokenizer.encode(marker, { addSpecial: false });
    if (ids.length === 1 && tokenizer.decode(ids) === "") out.set(ids[0], marker);
  }
  return out;
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function callId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return "call_" + [...bytes].map((b) => ALNUM[b % ALNUM.length]).join("");
}
