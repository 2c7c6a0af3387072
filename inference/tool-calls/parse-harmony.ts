/**
 * gpt-oss's harmony output: a run of messages, each a header, `<|message|>` and a body up to
 * `<|end|>` (or `<|call|>`, `<|return|>`, which end generation, or the next `<|start|>`):
 *
 *     <|channel|>analysis<|message|>…<|end|>
 *     <|start|>assistant<|channel|>final<|message|>…
 *     <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{…}
 *
 * Read as llama.cpp's server reads it (common/chat.cpp, the GPT-OSS handler): the analysis
 * channel is reasoning; the final channel, and commentary without a recipient (a preamble), are
 * content; a message to `functions.NAME` is a call of NAME with its body as the JSON arguments,
 * its recipient in the channel header or in the role header (`<|start|>assistant to=functions.NAME
 * <|channel|>commentary json<|message|>`). A message to any other recipient (a built-in tool such
 * as `browser.search`, or a function the request did not offer) is consumed, as llama.cpp's
 * "unsolicited" rule does. The output starts right after the generation prompt's
 * `<|start|>assistant`, so inside the first header.
 *
 * Text that does not start like a header (a model that ignores the format) is content up to the
 * next end of a message; a header the output ends inside shows nothing; a call whose body is not
 * JSON of an object (cut off by max_tokens, say) is released as the text it was.
 */
import {
  heldFrom,
  isObject,
  parseJson,
  streamingParser,
  type ToolCallParser,
} from "./parse-common.ts";
import type { ParsedToolCall } from "./types.ts";

const MESSAGE = "<|message|>";
/** What ends a message's body; `<|start|>` opens the next header, so it is not consumed. */
const BODY_ENDS = ["<|end|>", "<|return|>", "<|call|>", "<|start|>"];
/**
 * How a header may start (after any whitespace): the role header, a channel, a recipient after the
 * role, a constraint.
 */
const HEADER_OPENERS = ["<|start|>", "<|channel|>", "to=", "<|constrain|>"];
/** A header longer than this is no header: the text is content. */
const MAX_HEADER = 512;

/** The special tokens of harmony, as a model writes them (control tokens that decode to ""). */
export const HARMONY_MARKERS: readonly string[] = [
  "<|start|>",
  "<|channel|>",
  "<|message|>",
  "<|constrain|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
];

type Kind =
  | { kind: "reasoning" }
  | { kind: "content" }
  | { kind: "call"; name: string }
  | { kind: "drop" };

interface Body {
  kind: Kind;
  /** The header as written, for a call released as text. */
  header: string;
  /** A call's body so far (other kinds stream out). */
  text: string;
  /** The header came from the prompt (a forced call's prefill). */
  prefilled: boolean;
  /** No header: text that ignores the format. */
  raw?: boolean;
}

/** What a header says: the last channel named, and the recipient unless it is the assistant. */
export function readHeader(header: string, names: ReadonlySet<string>): Kind {
  const channels = [...header.matchAll(/<\|channel\|>\s*([A-Za-z0-9_-]+)/g)];
  const channel = channels.at(-1)?.[1];
  const recipient = [...header.matchAll(/\bto=([^\s<]+)/g)].map((m) => m[1])
    .find((r) => r !== "assistant");
  if (recipient !== undefined) {
    const name = recipient.startsWith("functions.") ? recipient.slice(10) : undefined;
    return name !== undefined && names.has(name) ? { kind: "call", name } : { kind: "drop" };
  }
  return channel === "analysis" ? { kind: "reasoning" } : { kind: "content" };
}

/**
 * Whether `text` is, or may still become, the start of a header (text that ends while it only may
 * is content).
 */
function mayBeHeader(text: string): boolean {
  const t = text.replace(/^[ \t\r\n]+/, "");
  return t === "" ||
    HEADER_OPENERS.some((o) => t.startsWith(o) || (o.startsWith(t) && t.length < o.length));
}

/**
 * `prefill`: header text the prompt already wrote after `<|start|>assistant` (a forced call's
 * `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`), or "".
 */
export function harmonyParser(names: ReadonlySet<string>, prefill = ""): ToolCallParser {
  let buf = "";
  /** Set while inside a message's body. */
  let body: Body | undefined;

  const open = (header: string, prefilled: boolean): Body => ({
    kind: readHeader(header, names),
    header,
    text: "",
    prefilled,
  });
  if (prefill.endsWith(MESSAGE)) body = open(prefill.slice(0, -MESSAGE.length), true);

  return streamingParser((text, final) => {
    buf += text;
    let content = "";
    let reasoning = "";
    const calls: ParsedToolCall[] = [];
    const emit = (b: Body, piece: string) => {
      if (b.kind.kind === "content") content += piece;
      else if (b.kind.kind === "reasoning") reasoning += piece;
      else if (b.kind.kind === "call") b.text += piece;
    };
    const close = (b: Body) => {
      if (b.kind.kind !== "call") return;
      const args = parseJson(b.text.trim());
      if (isObject(args)) calls.push({ name: b.kind.name, arguments: JSON.stringify(args) });
      else content += (b.prefilled ? "" : b.header + MESSAGE) + b.text;
    };

    while (true) {
      if (!body) {
        const at = buf.indexOf(MESSAGE);
        const header = at < 0 ? buf : buf.slice(0, at);
        const opened = HEADER_OPENERS.some((o) => header.trimStart().startsWith(o));
        if (!mayBeHeader(header) || header.length > MAX_HEADER || (final && at < 0 && !opened)) {
          // No header: content up to the next end of a message.
          body = { kind: { kind: "content" }, header: "", text: "", prefilled: false, raw: true };
          continue;
        }
        if (at < 0) {
          if (final) buf = ""; // the output ended inside a header: nothing to show
          break;
        }
        body = open(header, false);
        buf = buf.slice(at + MESSAGE.length);
        continue;
      }
      const ends = BODY_ENDS.map((m) => [buf.indexOf(m), m] as const).filter(([i]) => i >= 0);
      if (ends.length > 0) {
        const [at, marker] = ends.reduce((a, b) => (b[0] < a[0] ? b : a));
        if (at === 0 && marker === "<|start|>" && body.raw) {
          // A header too long to be one: its opening is text too (and the reading moves on).
          emit(body, marker);
          buf = buf.slice(marker.length);
          continue;
        }
        emit(body, buf.slice(0, at));
        close(body);
        body = undefined;
        buf = buf.slice(marker === "<|start|>" ? at : at + marker.length);
        continue;
      }
      const upTo = final ? buf.length : heldFrom(buf, BODY_ENDS);
      emit(body, buf.slice(0, upTo));
      buf = buf.slice(upTo);
      if (final) {
        close(body);
        body = undefined;
      }
      break;
    }
    return reasoning === "" ? { text: content, calls } : { text: content, calls, reasoning };
  });
}
