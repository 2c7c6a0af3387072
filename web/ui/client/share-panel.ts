/// <reference lib="dom" />
/**
 * Share compute: one switch that makes this node serve a model to the relay's members
 * (`POST /api/node/start {"mode":"serve",…}`) or go back to using the mesh as a client
 * (`{"mode":"client"}`). The model field says what kind of reference was typed (catalog, Hugging
 * Face, local file) as the node reads it, installed models are one click away, and a start shows
 * its download and load progress, then its failure in the node's words if it fails.
 */
import { api } from "./api.ts";
import { badge, el, replace } from "./dom.ts";
import { createProgressBar } from "./progress-bar.ts";
import type { NodeState, NodeStatus, Panel, PanelContext, Snapshot } from "./types.ts";
import { errorText, MODELS_CHANGED, NODE_STATE_CHANGED } from "./widgets.ts";

interface Reference {
  kind: "catalog" | "huggingface" | "path" | "invalid";
  id: string | null;
  detail: string;
  installed: boolean;
}

interface InstalledEntry {
  id: string;
  partial?: boolean;
}

const KIND_WORDS: Record<Reference["kind"], string> = {
  catalog: "catalog",
  huggingface: "Hugging Face",
  path: "local file",
  invalid: "not a model",
};

const PHASE_WORDS: Record<string, string> = {
  downloading: "Downloading the model",
  hashing: "Checking the model file",
  loading: "Loading the model",
  joining: "Joining the mesh",
};

const CHECK_DELAY_MS = 300;

/** Serving, or on its way to serving: what the switch shows as "on". */
export function isSharing(s: NodeStatus | null): boolean {
  return s !== null && s.mode === "serve" && (s.state === "running" || s.state === "starting");
}

export function createSharePanel(ctx: PanelContext): Panel {
  const word = el("span", { class: "switch-word" }, "Off");
  const toggle = el(
    "button",
    {
      type: "button",
      role: "switch",
      id: "share-toggle",
      class: "switch",
      "aria-checked": "false",
      "aria-labelledby": "share-toggle-label",
    },
    el("span", { class: "switch-track", "aria-hidden": "true" }, el("span", { class: "knob" })),
    word,
  );
  const label = el(
    "span",
    { id: "share-toggle-label" },
    "Share this machine's compute with the relay's members",
  );
  const note = el("p", { id: "share-state", class: "muted", "aria-live": "polite" });
  const failure = el("p", { id: "share-error", class: "error", role: "alert", hidden: true });

  const field = el("input", {
    id: "share-model",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "stories260K, hf://owner/repo/file.gguf or /path/model.gguf",
  });
  const ref = el("p", { id: "share-ref", class: "muted", "aria-live": "polite" });
  const chips = el("div", { id: "share-chips", class: "row chips" });
  const memory = el("input", {
    id: "share-memory",
    type: "text",
    autocomplete: "off",
    placeholder: "e.g. 4GiB (default: what this machine allows)",
  });
  const gpu = el("input", { id: "share-gpu", type: "checkbox" });
  const progress = createProgressBar("share-progress");

  ctx.root.append(
    el("div", { class: "row" }, toggle, label),
    note,
    failure,
    progress.root,
    el("label", { for: "share-model", class: "field-label" }, "Model to serve"),
    field,
    ref,
    chips,
    el(
      "details",
      { id: "share-advanced" },
      el("summary", {}, "Advanced"),
      el("label", { for: "share-memory", class: "field-label" }, "Memory budget"),
      memory,
      el("div", { class: "row" }, gpu, el("label", { for: "share-gpu" }, "Use the GPU")),
    ),
  );

  let last: Snapshot | null = null;
  let sending = false;
  let typed = false; // the user chose a model: polls no longer fill the field

  const showFailure = (text: string | null) => {
    failure.hidden = text === null;
    failure.textContent = text ?? "";
  };

  let checkTimer: ReturnType<typeof setTimeout> | undefined;
  let checking: AbortController | null = null;
  const checkReference = () => {
    clearTimeout(checkTimer);
    checking?.abort();
    const value = field.value.trim();
    if (value === "") {
      replace(ref, "Type a model, or pick an installed one below.");
      return;
    }
    checkTimer = setTimeout(async () => {
      const aborter = checking = new AbortController();
      try {
        const r = await api.get<Reference>(
          `/api/models/reference?ref=${encodeURIComponent(value)}`,
          aborter.signal,
        );
        replace(
          ref,
          badge(KIND_WORDS[r.kind] ?? r.kind, r.kind === "invalid" ? "bad" : "ok"),
          " ",
          // The badge already names the kind that the line starts with.
          r.detail.replace(/^(catalog|Hugging Face|local file): /, ""),
          r.installed ? " · installed" : "",
        );
        ref.dataset.kind = r.kind;
      } catch (err) {
        if (aborter.signal.aborted) return;
        replace(ref, errorText(err, "Checking a model reference"));
        delete ref.dataset.kind;
      }
    }, CHECK_DELAY_MS);
  };
  field.addEventListener("input", () => {
    typed = true;
    checkReference();
  });

  const choose = (id: string) => {
    typed = true;
    field.value = id;
    checkReference();
  };

  const loadInstalled = async () => {
    try {
      const { models } = await api.get<{ models: InstalledEntry[] }>("/api/models/installed");
      const whole = [...new Set(models.filter((m) => !m.partial).map((m) => m.id))];
      replace(
        chips,
        whole.length === 0 ? el("span", { class: "muted" }, "No model installed yet.") : null,
        ...whole.map((id) => {
          const chip = el("button", { type: "button", class: "chip" }, id);
          chip.addEventListener("click", () => choose(id));
          return chip;
        }),
      );
      if (!typed && field.value === "" && whole.length > 0) {
        field.value = whole[0];
        checkReference();
      }
    } catch (err) {
      replace(chips, el("span", { class: "muted" }, errorText(err, "Listing installed models")));
    }
  };
  document.addEventListener(MODELS_CHANGED, () => void loadInstalled());
  void loadInstalled();
  checkReference();

  toggle.addEventListener("click", async () => {
    if (sending || toggle.getAttribute("aria-disabled") === "true" || toggle.disabled) return;
    const on = toggle.getAttribute("aria-checked") !== "true";
    let body: Record<string, unknown> = { mode: "client" };
    if (on) {
      const modelId = field.value.trim();
      if (modelId === "") {
        showFailure("Choose a model to serve first.");
        field.focus();
        return;
      }
      body = { mode: "serve", modelId };
      if (memory.value.trim() !== "") body.maxMemory = memory.value.trim();
      if (gpu.checked) body.gpu = true;
    }
    sending = true;
    showFailure(null);
    render();
    try {
      const { state } = await api.post<{ state: NodeState }>("/api/node/start", body);
      document.dispatchEvent(new CustomEvent(NODE_STATE_CHANGED, { detail: state }));
    } catch (err) {
      showFailure(errorText(err, "Starting and stopping the node"));
    } finally {
      sending = false;
      render();
      ctx.refresh();
    }
  });

  function render(): void {
    const s = last?.status ?? null;
    const denied = last?.denied === true;
    const sharing = isSharing(s);
    const busy = sending || s?.state === "starting" || s?.state === "stopping";
    toggle.setAttribute("aria-checked", String(sharing));
    toggle.disabled = denied || s === null;
    // aria-disabled, not disabled, while busy: the switch keeps the keyboard's focus.
    toggle.setAttribute("aria-disabled", String(busy));
    word.textContent = s?.state === "starting"
      ? "Starting…"
      : s?.state === "stopping"
      ? "Stopping…"
      : sharing
      ? "On"
      : "Off";
    field.disabled = memory.disabled = gpu.disabled = denied;
    if (!s) {
      note.textContent = "";
      progress.set(null);
      return;
    }
    note.textContent = denied
      ? "Sharing needs the relay to admit this node."
      : s.state === "failed"
      ? "The node failed to start."
      : s.state === "starting"
      ? `Starting to serve ${s.modelName ?? s.modelId ?? "the model"}…`
      : s.state === "stopping"
      ? "Stopping…"
      : s.state === "off"
      ? "The node is off: it neither serves nor uses the mesh."
      : sharing
      ? `Serving ${s.modelName ?? s.modelId ?? "a model"} to the relay's members.`
      : "Using the mesh as a client; this machine serves nothing.";
    if (s.state === "failed") {
      showFailure(`Failed to start: ${s.health.reason ?? "no reason given"}`);
    } else if (!sending && failure.textContent?.startsWith("Failed to start")) {
      showFailure(null);
    }
    const p = s.progress;
    if (s.state === "starting" && p) progress.set(PHASE_WORDS[p.phase] ?? p.phase, p);
    else if (s.state === "starting") progress.set("Starting");
    else progress.set(null);
    if (!typed && field.value === "" && s.modelId && s.mode === "serve") {
      field.value = s.modelId;
      checkReference();
    }
  }

  return {
    update(snapshot: Snapshot) {
      last = snapshot;
      render();
    },
  };
}
