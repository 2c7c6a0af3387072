/// <reference lib="dom" />
/**
 * Agent presets: pick an agent and a model, read the lines that point it at this node
 * (`GET /api/agent-preset?format=shell`), copy them with one button.
 */
import { AGENTS } from "../../agent-presets.ts";
import { api } from "./api.ts";
import { el, replace } from "./dom.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";
import { copyText, errorText } from "./widgets.ts";

export function createPresetsPanel(ctx: PanelContext): Panel {
  const agent = el(
    "select",
    { id: "preset-agent" },
    ...AGENTS.map((a) => el("option", { value: a }, a)),
  );
  const model = el("select", { id: "preset-model" });
  const text = el("pre", { id: "preset-text", tabindex: 0 }, "…");
  const copy = el("button", { type: "button", id: "preset-copy" }, "Copy");
  const copied = el("span", { id: "preset-copied", class: "muted", "aria-live": "polite" });
  ctx.root.append(
    el(
      "div",
      { class: "row" },
      el("label", { for: "preset-agent" }, "Agent"),
      agent,
      el("label", { for: "preset-model" }, "Model"),
      model,
    ),
    text,
    el("div", { class: "row" }, copy, copied),
  );

  let models: string[] = [];
  let loading: AbortController | null = null;
  let shown = "";

  async function load(): Promise<void> {
    const want = `${agent.value}\n${model.value}`;
    if (want === shown) return;
    shown = want;
    loading?.abort();
    const aborter = loading = new AbortController();
    copied.textContent = "";
    const query = new URLSearchParams({ agent: agent.value, format: "shell" });
    if (model.value !== "") query.set("model", model.value);
    try {
      text.textContent = await api.text(`/api/agent-preset?${query}`, aborter.signal);
      copy.disabled = false;
    } catch (err) {
      if (aborter.signal.aborted) return;
      text.textContent = errorText(err, "Agent presets");
      copy.disabled = true;
      shown = ""; // try again on the next poll
    }
  }

  agent.addEventListener("change", () => void load());
  model.addEventListener("change", () => void load());
  copy.addEventListener("click", async () => {
    copied.textContent = await copyText(text.textContent ?? "", text);
  });

  return {
    update(snapshot: Snapshot) {
      const offered = snapshot.availability?.models.map((m) => m.id) ?? [];
      if (offered.join("\n") !== models.join("\n")) {
        models = offered;
        const keep = model.value;
        replace(model, ...offered.map((id) => el("option", { value: id }, id)));
        if (offered.includes(keep)) model.value = keep;
      }
      if (offered.length === 0) {
        // Asking would only get 503 "no model is offered right now", each poll.
        text.textContent = snapshot.denied
          ? "No model: the relay denied this node."
          : "No model is offered right now: share one, or wait for a member's node.";
        copy.disabled = true;
        shown = "";
        return;
      }
      if (snapshot.status) void load();
    },
  };
}
