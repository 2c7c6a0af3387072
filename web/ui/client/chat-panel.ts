/// <reference lib="dom" />
/**
 * The chat playground (#chat): a conversation with a model through this node's own /v1, streamed
 * (`stream_options.include_usage`, so the last chunk counts the tokens), rendered as Markdown on
 * every chunk. Each answer says how long its first token took and how fast the rest came; Stop
 * aborts the request, which ends the generation on the serving node too.
 */
import { api, ApiError } from "./api.ts";
import { append, el, replace } from "./dom.ts";
import { renderMarkdown } from "./markdown.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";

interface Turn {
  role: "user" | "assistant";
  content: string;
}

export interface AnswerTimings {
  ttftMs: number | null;
  tokensPerSecond: number | null;
  completionTokens: number | null;
}

/** "first token 120 ms · 35.2 tokens/s · 48 tokens"; parts not known are left out. */
export function timingsLine(t: AnswerTimings): string {
  const parts: string[] = [];
  if (t.ttftMs !== null) parts.push(`first token ${Math.round(t.ttftMs)} ms`);
  if (t.tokensPerSecond !== null) parts.push(`${t.tokensPerSecond.toFixed(1)} tokens/s`);
  if (t.completionTokens !== null) parts.push(`${t.completionTokens} tokens`);
  return parts.join(" · ");
}

function numberField(id: string, label: string, attrs: Record<string, string | number>) {
  const input = el("input", { id, type: "number", inputmode: "decimal", ...attrs });
  return { input, row: el("div", { class: "field" }, el("label", { for: id }, label), input) };
}

export function createChatPanel(ctx: PanelContext): Panel {
  const model = el("select", { id: "chat-model" });
  const system = el("textarea", {
    id: "chat-system",
    rows: 2,
    placeholder: "You are a helpful assistant.",
  });
  const temperature = numberField("chat-temperature", "Temperature", {
    min: 0,
    max: 2,
    step: 0.1,
    placeholder: "default",
  });
  const topP = numberField("chat-top-p", "top_p", { min: 0, max: 1, step: 0.05, placeholder: "1" });
  const maxTokens = numberField("chat-max-tokens", "Max tokens", { min: 1, step: 1, value: 256 });
  const seed = numberField("chat-seed", "Seed", { step: 1, placeholder: "random" });
  const log = el("div", { id: "chat-log", class: "chat-log", role: "log", "aria-live": "polite" });
  const input = el("textarea", {
    id: "chat-input",
    rows: 3,
    placeholder: "Ask something… (Enter sends, Shift+Enter: new line)",
  });
  const send = el("button", { type: "submit", id: "chat-send" }, "Send");
  const stop = el("button", { type: "button", id: "chat-stop", disabled: true }, "Stop");
  const clear = el("button", { type: "button", id: "chat-clear", class: "secondary" }, "Clear");
  const note = el("p", { id: "chat-note", class: "muted", hidden: true });
  const form = el(
    "form",
    { class: "chat-form" },
    el("div", { class: "field" }, el("label", { for: "chat-model" }, "Model"), model),
    el(
      "details",
      { class: "chat-settings" },
      el("summary", {}, "System prompt and sampling"),
      el("div", { class: "field" }, el("label", { for: "chat-system" }, "System prompt"), system),
      el("div", { class: "chat-sampling" }, temperature.row, topP.row, maxTokens.row, seed.row),
    ),
    log,
    el("label", { for: "chat-input", class: "sr-only" }, "Message"),
    input,
    el("div", { class: "chat-actions" }, send, stop, clear),
  );
  append(ctx.root, note, form);

  const turns: Turn[] = [];
  let running: AbortController | null = null;
  let blocked = true;

  const setBusy = () => {
    const busy = running !== null;
    send.disabled = busy || blocked;
    input.disabled = blocked;
    model.disabled = busy || blocked;
    stop.disabled = !busy;
    clear.disabled = busy;
  };

  function message(role: Turn["role"], content: Node[]): HTMLElement {
    const body = el("div", { class: "md" }, ...content);
    const who = el("div", { class: "who" }, role === "user" ? "You" : model.value || "Model");
    const box = el("div", { class: `msg ${role}` }, who, body);
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
    return box;
  }

  function params(): Record<string, number> {
    const out: Record<string, number> = {};
    const take = (name: string, field: HTMLInputElement) => {
      if (field.value.trim() !== "" && Number.isFinite(field.valueAsNumber)) {
        out[name] = field.valueAsNumber;
      }
    };
    take("temperature", temperature.input);
    take("top_p", topP.input);
    take("max_tokens", maxTokens.input);
    take("seed", seed.input);
    return out;
  }

  async function ask(): Promise<void> {
    const text = input.value.trim();
    if (text === "" || running || blocked) return;
    input.value = "";
    turns.push({ role: "user", content: text });
    // The user's words are shown as typed: only the model's answer is Markdown.
    message("user", [el("p", {}, text)]);
    const box = message("assistant", []);
    box.setAttribute("aria-busy", "true");
    const body = box.querySelector(".md") as HTMLElement;
    const footer = el("p", { class: "timings muted" }, "waiting for the first token…");
    box.appendChild(footer);

    const controller = new AbortController();
    running = controller;
    setBusy();
    const started = performance.now();
    let first: number | null = null;
    let answer = "";
    let completionTokens: number | null = null;
    const messages = [
      ...(system.value.trim() ? [{ role: "system", content: system.value.trim() }] : []),
      ...turns,
    ];
    try {
      await api.sse("/v1/chat/completions", {
        model: model.value,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        ...params(),
      }, (data) => {
        const error = data.error as { message?: string } | undefined;
        if (error) throw new ApiError(0, null, error.message ?? "the node ended the answer");
        const usage = data.usage as { completion_tokens?: number } | null | undefined;
        if (usage?.completion_tokens !== undefined) completionTokens = usage.completion_tokens;
        const choices = data.choices as { delta?: { content?: string | null } }[] | undefined;
        const piece = choices?.[0]?.delta?.content;
        if (!piece) return;
        first ??= performance.now();
        answer += piece;
        replace(body, ...renderMarkdown(answer));
        footer.textContent = "streaming…";
        log.scrollTop = log.scrollHeight;
      }, controller.signal);
      const ended = performance.now();
      footer.textContent = timingsLine({
        ttftMs: first === null ? null : first - started,
        tokensPerSecond: first !== null && completionTokens !== null && completionTokens > 1 &&
            ended > first
          ? (completionTokens - 1) / ((ended - first) / 1000)
          : null,
        completionTokens,
      }) || "no tokens";
      box.classList.add("done");
    } catch (err) {
      if (controller.signal.aborted) {
        footer.textContent = `stopped${first === null ? "" : ` after ${answer.length} characters`}`;
        box.classList.add("stopped");
      } else {
        const why = err instanceof Error ? err.message : String(err);
        footer.textContent = "";
        box.appendChild(el("p", { class: "error", role: "alert" }, `Error: ${why}`));
        box.classList.add("failed");
      }
    } finally {
      box.removeAttribute("aria-busy");
      if (answer !== "") turns.push({ role: "assistant", content: answer });
      else turns.pop(); // an unanswered question is not sent again with the next one
      running = null;
      setBusy();
      ctx.refresh(); // the mesh picture's charts read this answer's timings
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void ask();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void ask();
    }
  });
  stop.addEventListener("click", () => running?.abort());
  clear.addEventListener("click", () => {
    turns.length = 0;
    replace(log);
  });

  return {
    update(s: Snapshot) {
      const models = s.availability?.models ?? [];
      const ids = models.map((m) => m.id).join("\n");
      if (model.dataset.ids !== ids) {
        const chosen = model.value;
        replace(model, ...models.map((m) => el("option", { value: m.id }, m.name || m.id)));
        if (models.some((m) => m.id === chosen)) model.value = chosen;
        model.dataset.ids = ids;
      }
      const why = s.denied
        ? "Chat is off: the relay mesh denied this node."
        : s.availability && models.length === 0
        ? `Chat needs a model: ${
          (s.availability.reason ?? "none is offered right now").replace(/\.$/, "")
        }.`
        : null;
      // A failed poll keeps the last state: a stream may still be running fine.
      if (s.error === null) {
        blocked = why !== null;
        note.hidden = why === null;
        note.textContent = why ?? "";
        setBusy();
      }
    },
  };
}
