/**
 * The answers and stream events of the APIs agents speak, as their publishers define them: the
 * fields OpenAI's and Anthropic's API references mark required (the official SDKs' types,
 * generated from those specifications, make them non-optional), with their types and enums.
 * Extra fields are allowed, as every client ignores them. A node's answer that fails one of
 * these would break a stricter client than the SDKs, which parse leniently. Left out: fields of
 * features a node has not (Anthropic's container, stop_details, diagnostics, cache and
 * server-tool usage, citations; OpenAI's access_programs), which the newest SDK types list as
 * required-but-nullable and clients read as null when absent.
 */
import { z } from "zod";

const int = z.number().int().nonnegative();
const record = z.record(z.string(), z.unknown());

// --- OpenAI chat completions -------------------------------------------------------------

const finishReason = z.enum(["stop", "length", "tool_calls", "content_filter", "function_call"]);
const tokenLogprob = z.object({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(int).nullable(),
  top_logprobs: z.array(
    z.object({ token: z.string(), logprob: z.number(), bytes: z.array(int).nullable() }),
  ),
});
const logprobs = z.object({
  content: z.array(tokenLogprob).nullable(),
  refusal: z.array(tokenLogprob).nullable(),
});
const usage = z.object({ prompt_tokens: int, completion_tokens: int, total_tokens: int });

export const chatCompletion = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: int,
  model: z.string(),
  choices: z.array(z.object({
    index: int,
    finish_reason: finishReason,
    logprobs: logprobs.nullable(),
    message: z.object({
      role: z.literal("assistant"),
      content: z.string().nullable(),
      refusal: z.string().nullable(),
      tool_calls: z.array(z.object({
        id: z.string(),
        type: z.literal("function"),
        function: z.object({ name: z.string(), arguments: z.string() }),
      })).optional(),
    }),
  })),
  usage: usage.optional(),
});

export const chatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: int,
  model: z.string(),
  choices: z.array(z.object({
    index: int,
    finish_reason: finishReason.nullable(),
    logprobs: logprobs.nullable().optional(),
    delta: z.object({
      role: z.enum(["developer", "system", "user", "assistant", "tool"]).optional(),
      content: z.string().nullable().optional(),
      refusal: z.string().nullable().optional(),
      tool_calls: z.array(z.object({
        index: int,
        id: z.string().optional(),
        type: z.literal("function").optional(),
        function: z.object({
          name: z.string().optional(),
          arguments: z.string().optional(),
        }).optional(),
      })).optional(),
    }),
  })),
  usage: usage.nullable().optional(),
});

export const openaiError = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});

// --- OpenAI Responses ----------------------------------------------------------------------

const outputText = z.object({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z.array(z.unknown()),
});
const itemStatus = z.enum(["in_progress", "completed", "incomplete"]);
const outputMessage = z.object({
  id: z.string(),
  type: z.literal("message"),
  role: z.literal("assistant"),
  status: itemStatus,
  content: z.array(outputText),
});
const functionCall = z.object({
  type: z.literal("function_call"),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  id: z.string().optional(),
  status: itemStatus.optional(),
});
const outputItem = z.discriminatedUnion("type", [outputMessage, functionCall]);

export const response = z.object({
  id: z.string(),
  object: z.literal("response"),
  created_at: z.number(),
  status: z.enum(["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"])
    .optional(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  incomplete_details: z.object({ reason: z.enum(["max_output_tokens", "content_filter"]) })
    .nullable(),
  instructions: z.union([z.string(), z.array(z.unknown())]).nullable(),
  metadata: z.record(z.string(), z.string()).nullable(),
  model: z.string(),
  output: z.array(outputItem),
  parallel_tool_calls: z.boolean(),
  temperature: z.number().nullable(),
  tool_choice: z.union([
    z.enum(["none", "auto", "required"]),
    z.object({ type: z.literal("function"), name: z.string() }),
  ]),
  tools: z.array(z.object({
    type: z.literal("function"),
    name: z.string(),
    parameters: record.nullable(),
    strict: z.boolean().nullable(),
    description: z.string().nullable().optional(),
  })),
  top_p: z.number().nullable(),
  previous_response_id: z.string().nullable().optional(),
  max_output_tokens: int.nullable().optional(),
  // null until the end, as OpenAI's own streams send it in response.created
  usage: z.object({
    input_tokens: int,
    input_tokens_details: z.object({ cached_tokens: int }),
    output_tokens: int,
    output_tokens_details: z.object({ reasoning_tokens: int }),
    total_tokens: int,
  }).nullable().optional(),
});

const seq = { sequence_number: int };
const inItem = { item_id: z.string(), output_index: int };
const inPart = { ...inItem, content_index: int };
const lifecycle = (type: string) => z.object({ type: z.literal(type), response: response, ...seq });

export const responseEvent = z.discriminatedUnion("type", [
  lifecycle("response.created"),
  lifecycle("response.in_progress"),
  lifecycle("response.completed"),
  lifecycle("response.incomplete"),
  lifecycle("response.failed"),
  z.object({
    type: z.literal("response.output_item.added"),
    output_index: int,
    item: outputItem,
    ...seq,
  }),
  z.object({
    type: z.literal("response.output_item.done"),
    output_index: int,
    item: outputItem,
    ...seq,
  }),
  z.object({ type: z.literal("response.content_part.added"), part: outputText, ...inPart, ...seq }),
  z.object({ type: z.literal("response.content_part.done"), part: outputText, ...inPart, ...seq }),
  z.object({
    type: z.literal("response.output_text.delta"),
    delta: z.string(),
    logprobs: z.array(z.unknown()),
    ...inPart,
    ...seq,
  }),
  z.object({
    type: z.literal("response.output_text.done"),
    text: z.string(),
    logprobs: z.array(z.unknown()),
    ...inPart,
    ...seq,
  }),
  z.object({
    type: z.literal("response.function_call_arguments.delta"),
    delta: z.string(),
    ...inItem,
    ...seq,
  }),
  z.object({
    type: z.literal("response.function_call_arguments.done"),
    arguments: z.string(),
    ...inItem,
    ...seq,
  }),
  z.object({
    type: z.literal("error"),
    code: z.string().nullable(),
    message: z.string(),
    param: z.string().nullable(),
    ...seq,
  }),
]);

// --- Anthropic Messages --------------------------------------------------------------------

const stopReason = z.enum([
  "end_turn",
  "max_tokens",
  "stop_sequence",
  "tool_use",
  "pause_turn",
  "refusal",
]);
const textBlock = z.object({ type: z.literal("text"), text: z.string() });
const toolUseBlock = z.object({
  type: z.literal("tool_use"),
  id: z.string().regex(/^toolu_/),
  name: z.string(),
  input: record,
});

export const anthropicMessage = z.object({
  id: z.string(),
  type: z.literal("message"),
  role: z.literal("assistant"),
  content: z.array(z.discriminatedUnion("type", [textBlock, toolUseBlock])),
  model: z.string(),
  stop_reason: stopReason.nullable(),
  stop_sequence: z.string().nullable(),
  usage: z.object({ input_tokens: int, output_tokens: int }),
});

export const anthropicEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("message_start"), message: anthropicMessage }),
  z.object({
    type: z.literal("content_block_start"),
    index: int,
    content_block: z.discriminatedUnion("type", [textBlock, toolUseBlock]),
  }),
  z.object({
    type: z.literal("content_block_delta"),
    index: int,
    delta: z.discriminatedUnion("type", [
      z.object({ type: z.literal("text_delta"), text: z.string() }),
      z.object({ type: z.literal("input_json_delta"), partial_json: z.string() }),
    ]),
  }),
  z.object({ type: z.literal("content_block_stop"), index: int }),
  z.object({
    type: z.literal("message_delta"),
    delta: z.object({ stop_reason: stopReason.nullable(), stop_sequence: z.string().nullable() }),
    usage: z.object({ output_tokens: int }),
  }),
  z.object({ type: z.literal("message_stop") }),
  z.object({ type: z.literal("ping") }),
  z.object({
    type: z.literal("error"),
    error: z.object({ type: z.string(), message: z.string() }),
  }),
]);

export const anthropicError = z.object({
  type: z.literal("error"),
  error: z.object({ type: z.string(), message: z.string() }),
});
