/**
 * Chat prompts from a model's own Jinja template (GGUF `tokenizer.chat_template`),
 * rendered with @huggingface/jinja the way transformers' `apply_chat_template`
 * does, with a ChatML fallback for models that ship no (usable) template.
 */

import { Environment, Interpreter, Template } from "@huggingface/jinja";

/** One part of an OpenAI array content; only text parts can be rendered. */
export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content: string | ContentPart[] | null;
  /** OpenAI fields some templates read; passed through unchanged. */
  name?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
  /** An assistant's reasoning apart from its answer (llama.cpp's name; Qwen3's template reads it). */
  reasoning_content?: string;
}

export interface RenderChatOptions {
  /** The GGUF `tokenizer.chat_template`; missing or unparsable → ChatML. */
  template?: string;
  messages: readonly ChatMessage[];
  bosToken?: string;
  eosToken?: string;
  addGenerationPrompt?: boolean;
  /** OpenAI `tools`, for templates that describe them to the model. */
  tools?: readonly unknown[];
  /** Clock for `strftime_now` (Llama 3.x prints today's date); default: now. */
  now?: () => Date;
  /** More variables for the template (e.g. Llama 3.x's `tools_in_user_message`). */
  context?: Record<string, unknown>;
}

export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

const ROLES: ReadonlySet<string> = new Set(["system", "user", "assistant", "tool"]);

/** Rendered when a model has no template: `<|im_start|>role\ncontent<|im_end|>\n`. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + " +
  "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{% endif %}";

export function renderChat(options: RenderChatOptions): string {
  const compiled = compile(options.template);
  const template = compiled.template;
  let messages = normalizeMessages(options.messages);
  if (!supportsSystem(compiled)) messages = mergeSystemIntoUser(messages);
  const context = templateContext(options.now ?? (() => new Date()), {
    messages,
    bos_token: options.bosToken ?? "",
    eos_token: options.eosToken ?? "",
    add_generation_prompt: options.addGenerationPrompt ?? true,
  });
  Object.assign(context, options.context);
  if (options.tools && options.tools.length > 0) context.tools = options.tools;
  try {
    return renderWith(template, context);
  } catch (err) {
    if (err instanceof TemplateRaised) {
      throw new ChatTemplateError(`chat template rejected the messages: ${err.message}`);
    }
    throw new ChatTemplateError(`chat template failed to render: ${errorText(err)}`);
  }
}

/**
 * Checks roles and flattens OpenAI content arrays to plain strings, so every
 * template sees `content` as a string.
 */
export function normalizeMessages(messages: readonly ChatMessage[]): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ChatTemplateError("messages must be a non-empty array");
  }
  return messages.map((m, i) => {
    if (m === null || typeof m !== "object") {
      throw new ChatTemplateError(`messages[${i}] must be an object`);
    }
    if (!ROLES.has(m.role)) {
      throw new ChatTemplateError(
        `messages[${i}].role must be one of system, user, assistant, tool; got ${
          JSON.stringify(m.role)
        }`,
      );
    }
    const out: ChatMessage = { ...m, content: contentText(m, i) };
    for (const key of Object.keys(out) as (keyof ChatMessage)[]) {
      if (out[key] === undefined) delete out[key];
    }
    return out;
  });
}

function contentText(m: ChatMessage, i: number): string {
  const c = m.content;
  if (typeof c === "string") return c;
  // An assistant turn that only calls tools carries no text.
  if (c === null || c === undefined) {
    if (m.role === "assistant" && m.tool_calls) return "";
    throw new ChatTemplateError(`messages[${i}].content is missing`);
  }
  if (!Array.isArray(c)) {
    throw new ChatTemplateError(`messages[${i}].content must be a string or an array of parts`);
  }
  return c.map((part, j) => {
    if (part?.type !== "text" || typeof part.text !== "string") {
      const kind = part?.type === undefined ? typeof part : JSON.stringify(part.type);
      throw new ChatTemplateError(
        `messages[${i}].content[${j}] is a ${kind} part; only text parts are supported`,
      );
    }
    return part.text;
  }).join("");
}

// One parsed template is reused: a node serves one model, so the same
// template string arrives with every request.
interface Compiled {
  template: Template;
  system?: boolean;
}
let cached: { source: string; compiled: Compiled } | undefined;
let chatml: Compiled | undefined;

function compile(source: string | undefined): Compiled {
  if (source && source.trim() !== "") {
    if (cached?.source === source) return cached.compiled;
    try {
      const compiled = { template: new Template(source) };
      cached = { source, compiled };
      return compiled;
    } catch {
      // Unparsable by this Jinja subset: fall through to ChatML rather than
      // refuse to serve the model at all.
    }
  }
  return chatml ??= { template: new Template(CHATML_TEMPLATE), system: true };
}

const PROBE = "<<grove-system-probe>>";

/**
 * Whether the template shows a system message at all. Some (Gemma, Phi-3
 * mini) raise on it or silently drop it; like llama.cpp we then fold the
 * system text into the next user turn rather than lose it.
 */
function supportsSystem(compiled: Compiled): boolean {
  if (compiled.system === undefined) {
    try {
      const out = renderWith(
        compiled.template,
        templateContext(() => new Date(), {
          messages: [{ role: "system", content: PROBE }, { role: "user", content: "probe" }],
          bos_token: "",
          eos_token: "",
          add_generation_prompt: true,
        }),
      );
      compiled.system = out.includes(PROBE);
    } catch {
      compiled.system = false;
    }
  }
  return compiled.system;
}

/** Each system message's text goes in front of the next user turn, joined by a newline. */
function mergeSystemIntoUser(messages: ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  let pending: string[] = [];
  for (const m of messages) {
    if (m.role === "system") {
      pending.push(m.content as string);
    } else if (m.role === "user" && pending.length > 0) {
      out.push({ ...m, content: [...pending, m.content].join("\n") });
      pending = [];
    } else {
      out.push(m);
    }
  }
  if (pending.length > 0) out.push({ role: "user", content: pending.join("\n") });
  return out;
}

/** Whether the template parses (callers can log that ChatML will be used instead). */
export function templateParses(source: string | undefined): boolean {
  if (!source) return false;
  try {
    new Template(source);
    return true;
  } catch {
    return false;
  }
}

class TemplateRaised extends Error {}

/** The variables and helpers every render gets besides the messages. */
function templateContext(
  now: () => Date,
  vars: Record<string, unknown>,
): Record<string, unknown> {
  return {
    ...vars,
    raise_exception: (message: unknown) => {
      throw new TemplateRaised(String(message));
    },
    strftime_now: (format: unknown) => strftime(now(), String(format)),
  };
}

/**
 * `Template.render` refuses to let callers replace its globals (it declares
 * `raise_exception` itself and a second declaration throws), so build the
 * environment here: the same globals, with our `raise_exception`, whose error
 * we can tell apart from a template bug.
 */
function renderWith(template: Template, context: Record<string, unknown>): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    range,
  };
  for (const [name, value] of Object.entries({ ...globals, ...context })) env.set(name, value);
  const result = new Interpreter(env).run(template.parsed);
  return String(result.value);
}

/** Python's range(stop) / range(start, stop[, step]). */
function range(...args: number[]): number[] {
  const [start, stop, step] = args.length === 1
    ? [0, args[0], 1]
    : [args[0], args[1], args[2] ?? 1];
  if (step === 0) throw new Error("range() arg 3 must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/**
 * Python-style strftime in local time with English (C locale) names, the
 * subset chat templates use. Unknown directives are left as written.
 */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return format.replace(/%([a-zA-Z%])/g, (all, d: string) => {
    switch (d) {
      case "Y":
        return String(date.getFullYear());
      case "y":
        return pad(date.getFullYear() % 100);
      case "m":
        return pad(date.getMonth() + 1);
      case "d":
        return pad(date.getDate());
      case "e":
        return String(date.getDate()).padStart(2, " ");
      case "B":
        return MONTHS[date.getMonth()];
      case "b":
        return MONTHS[date.getMonth()].slice(0, 3);
      case "A":
        return DAYS[date.getDay()];
      case "a":
        return DAYS[date.getDay()].slice(0, 3);
      case "H":
        return pad(date.getHours());
      case "I":
        return pad(date.getHours() % 12 || 12);
      case "p":
        return date.getHours() < 12 ? "AM" : "PM";
      case "M":
        return pad(date.getMinutes());
      case "S":
        return pad(date.getSeconds());
      case "j": {
        // Calendar days via UTC, so DST shifts and the time of day do not count.
        const y = date.getFullYear();
        const day = Date.UTC(y, date.getMonth(), date.getDate()) - Date.UTC(y, 0, 1);
        return pad(day / 86_400_000 + 1, 3);
      }
      case "%":
        return "%";
      default:
        return all;
    }
  });
}
