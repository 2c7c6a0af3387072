/**
 * What the agent SDK conformance tests share: a `fetch` that every SDK under test is given (it
 * checks each answer and stream event against the published shapes of support/api-shapes.ts,
 * and records what the SDK sent), a guard that no library reaches past loopback, Ajv for the
 * constrained answers, and the generated model whose chat template has tools.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { z } from "zod";
import { GgmlType } from "../../inference/mod.ts";
import { str } from "../support/gguf-writer.ts";
import { writeGguf } from "../support/gguf-writer.ts";
import { buildTestModel } from "../support/test-models.ts";
import {
  anthropicError,
  anthropicEvent,
  anthropicMessage,
  chatCompletion,
  chatCompletionChunk,
  openaiError,
  response,
  responseEvent,
} from "../support/api-shapes.ts";

/** The generated model served with Qwen 2.5's template: Hermes-style `<tool_call>` calls. */
export const TOOLS_MODEL = "qwen-tools";

/** A small qwen2 model (random weights, stories260K's vocabulary) with Qwen 2.5's template. */
export async function writeToolsModel(dir: string): Promise<string> {
  const path = `${dir}/${TOOLS_MODEL}.gguf`;
  const model = await buildTestModel({
    arch: "qwen2",
    type: GgmlType.F32,
    dim: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    ffn: 128,
    seed: 12,
    contextLength: 4096,
  });
  const template = await Deno.readTextFile(
    new URL("../fixtures/templates/Qwen-Qwen2.5-7B-Instruct.jinja", import.meta.url),
  );
  model.metadata["tokenizer.chat_template"] = str(template);
  await writeGguf(path, model);
  return path;
}

type Body = Record<string, unknown>;

export interface Traffic {
  /** Give this to the SDK: it checks every answer from the node as the SDK reads it. */
  fetch: typeof fetch;
  /** What the SDK sent, in order: the route's path and its JSON body. */
  sent: { path: string; body: Body }[];
  /** Waits until every answer so far was checked; how they broke their shapes since the last call. */
  problems(): Promise<string[]>;
  /** Answers and stream events checked so far. */
  checked(): number;
}

type Route = "chat" | "responses" | "messages";

function routeOf(path: string): Route | undefined {
  if (path === "/v1/chat/completions") return "chat";
  if (path === "/v1/responses" || path.startsWith("/v1/responses/")) return "responses";
  if (path === "/v1/messages") return "messages";
  return undefined;
}

function urlOf(input: RequestInfo | URL): URL {
  return new URL(input instanceof Request ? input.url : String(input));
}

export function traffic(): Traffic {
  const sent: Traffic["sent"] = [];
  const problems: string[] = [];
  const pending: Promise<void>[] = [];
  let checked = 0;
  const check = (what: string, schema: z.ZodType, value: unknown) => {
    checked++;
    const r = schema.safeParse(value);
    if (!r.success) {
      problems.push(`${what}: ${JSON.stringify(value).slice(0, 400)}\n  ${r.error.message}`);
    }
  };

  async function checkAnswer(route: Route, res: Response, body: ReadableStream<Uint8Array>) {
    const text = await new Response(body).text();
    const type = res.headers.get("content-type") ?? "";
    const what = `${route} ${res.status}`;
    if (!type.includes("text/event-stream")) {
      const value = JSON.parse(text);
      if (!res.ok) check(what, route === "messages" ? anthropicError : openaiError, value);
      else {check(
          what,
          { chat: chatCompletion, responses: response, messages: anthropicMessage }[route],
          value,
        );}
      return;
    }
    const frames = text.split(/\n\n/).filter((f) => f.trim() !== "");
    const events: Body[] = [];
    for (const frame of frames) {
      const lines = frame.split("\n");
      const name = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (route === "chat") {
        if (data === "[DONE]") {
          if (frame !== frames.at(-1)) problems.push(`${what}: [DONE] before the end`);
          continue;
        }
        const value = JSON.parse(data);
        check(`${what} chunk`, "error" in value ? openaiError : chatCompletionChunk, value);
        continue;
      }
      const value = JSON.parse(data);
      events.push(value);
      check(`${what} event`, route === "messages" ? anthropicEvent : responseEvent, value);
      if (name !== value.type) problems.push(`${what}: event "${name}" carries type ${value.type}`);
    }
    const types = events.map((e) => e.type);
    if (route === "chat" && frames.at(-1) !== "data: [DONE]") {
      problems.push(`${what}: the stream did not end with [DONE]`);
    }
    if (route === "messages" && !types.includes("error")) {
      if (types[0] !== "message_start" || types.at(-1) !== "message_stop") {
        problems.push(`${what}: events ${types.join(",")}`);
      }
    }
    if (route === "responses") {
      const seqs = events.map((e) => e.sequence_number);
      if (seqs.some((s, i) => s !== i)) problems.push(`${what}: sequence numbers ${seqs}`);
      const last = types.at(-1);
      if (
        types[0] !== "response.created" ||
        !/^(response\.(completed|incomplete)|error)$/.test(last as string)
      ) {
        problems.push(`${what}: events ${types.join(",")}`);
      }
    }
  }

  const checkedFetch: typeof fetch = async (input, init) => {
    const url = urlOf(input);
    const route = routeOf(url.pathname);
    const bodyText = init?.body ?? (input instanceof Request ? await input.clone().text() : null);
    if (route && typeof bodyText === "string") {
      sent.push({ path: url.pathname, body: JSON.parse(bodyText) });
    }
    const res = await fetch(input, init);
    if (!route || !res.body) return res;
    const [mine, theirs] = res.body.tee();
    pending.push(
      checkAnswer(route, res, mine).catch((err) => {
        problems.push(`${route} ${res.status}: unreadable answer: ${err}`);
      }),
    );
    return new Response(theirs, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };

  return {
    fetch: checkedFetch,
    sent,
    async problems() {
      await Promise.all(pending.splice(0));
      return problems.splice(0);
    },
    checked: () => checked,
  };
}

/** Fails when an answer or event broke its shape, or when none was checked at all. */
export async function assertConformed(t: Traffic): Promise<void> {
  const found = await t.problems();
  assert.deepEqual(found, [], found.join("\n"));
  assert.ok(t.checked() > 0, "answers were checked");
}

/**
 * Makes the global fetch refuse any host but loopback for the test's duration (a library that
 * reaches for the network, e.g. to download a tokenizer, shows up in `outbound()`).
 */
export function loopbackOnly() {
  const real = globalThis.fetch;
  const outbound: string[] = [];
  globalThis.fetch = (input, init) => {
    const url = urlOf(input);
    if (!/^(127\.0\.0\.1|localhost|\[::1\])$/.test(url.hostname)) {
      outbound.push(url.href);
      return Promise.reject(new TypeError(`no network in tests: ${url.href}`));
    }
    return real(input, init);
  };
  return {
    outbound: () => [...outbound],
    restore: () => void (globalThis.fetch = real),
  };
}

const ajv = new Ajv2020({ strict: false, allErrors: true });

/** `value` (JSON text or a parsed value) validates against the JSON Schema. */
export function assertValid(schema: unknown, value: unknown, what: string): void {
  const { $schema: _ignored, ...rest } = schema as Body;
  const parsed = typeof value === "string" ? JSON.parse(value) : value;
  const validate = ajv.compile(rest);
  assert.ok(
    validate(parsed),
    `${what}: ${JSON.stringify(parsed)} ${ajv.errorsText(validate.errors)}`,
  );
}
