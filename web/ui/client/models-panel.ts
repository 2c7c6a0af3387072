/// <reference lib="dom" />
/**
 * This machine's models: the installed list (a model in the node's own store can be deleted,
 * after an inline confirm; GROVE_MODEL_PATH files are only read), a pull that streams the
 * node's NDJSON progress into a bar with rate and time left, and the catalog with what fits
 * this machine's memory, each entry one button from a pull.
 */
import { api } from "./api.ts";
import { badge, el, formatBytes, replace } from "./dom.ts";
import { createProgressBar } from "./progress-bar.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";
import { confirmButton, errorText, MODELS_CHANGED } from "./widgets.ts";

interface Installed {
  id: string;
  file?: string;
  size?: number;
  partial?: boolean;
  bytesPresent?: number;
  location?: "store" | "model-path" | "embedded";
  architecture?: string | null;
  quantization?: string | null;
  sha256?: { state: string };
}

interface CatalogModel {
  id: string;
  name: string;
  size: number;
  approxSize?: number | null; // as published sources round it, where size is not known
  architecture?: string;
  quantization?: string;
  needsBytes: number | null; // null: no size known
  fits: boolean;
  installed: boolean;
  runs?: boolean; // false: Grove's engines do not run its architecture yet
}

const SHA_WORDS: Record<string, string> = {
  verified: "sha256 verified",
  recorded: "sha256 recorded",
  unknown: "sha256 not checked",
};

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes < 10 * 2 ** 30 ? 1 : 0)} GiB`;
}

export function createModelsPanel(ctx: PanelContext): Panel {
  const installedBox = el("div", { id: "models-installed" }, el("p", { class: "muted" }, "…"));
  const installedError = el("p", {
    id: "models-error",
    class: "error",
    role: "alert",
    hidden: true,
  });
  const pullField = el("input", {
    id: "pull-model",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "catalog id or hf://owner/repo/file.gguf",
  });
  const pullButton = el("button", { type: "submit", id: "pull-button", class: "primary" }, "Pull");
  const cancelButton = el("button", { type: "button", id: "pull-cancel", hidden: true }, "Cancel");
  const pullForm = el(
    "form",
    { id: "pull-form", class: "row" },
    el("label", { for: "pull-model", class: "sr-only" }, "Model to pull"),
    pullField,
    pullButton,
    cancelButton,
  );
  const progress = createProgressBar("pull-progress");
  const pullResult = el("p", { id: "pull-result", "aria-live": "polite" });
  const catalogBox = el("div", { id: "models-catalog" }, el("p", { class: "muted" }, "…"));

  ctx.root.append(
    el("h3", {}, "Installed"),
    installedBox,
    installedError,
    el("h3", {}, "Pull a model"),
    pullForm,
    progress.root,
    pullResult,
    el("h3", {}, "Catalog"),
    catalogBox,
  );

  let pulling: AbortController | null = null;
  let denied = false;

  const changed = () => {
    document.dispatchEvent(new Event(MODELS_CHANGED));
  };

  async function loadInstalled(): Promise<void> {
    try {
      const { models } = await api.get<{ models: Installed[] }>("/api/models/installed");
      replace(installedBox, installedTable(models));
    } catch (err) {
      replace(installedBox, el("p", { class: "muted" }, errorText(err, "Listing models")));
    }
  }

  function installedTable(models: Installed[]): HTMLElement {
    if (models.length === 0) return el("p", { class: "muted" }, "No model on this machine yet.");
    return el(
      "table",
      { class: "models" },
      el(
        "thead",
        {},
        el("tr", {}, ...["Model", "Size", "Kind", "Check", ""].map((h) => el("th", {}, h))),
      ),
      el(
        "tbody",
        {},
        ...models.map((m) =>
          el(
            "tr",
            { "data-model": m.id },
            el(
              "td",
              {},
              el("strong", {}, m.id),
              m.file && m.file !== m.id ? el("div", { class: "muted" }, m.file) : null,
              m.location === "store" ? null : el(
                "div",
                { class: "muted" },
                m.location === "embedded"
                  ? "shipped with Grove (read only)"
                  : "GROVE_MODEL_PATH (read only)",
              ),
            ),
            el(
              "td",
              {},
              m.size === undefined ? "—" : formatBytes(m.size),
              m.partial && m.bytesPresent !== undefined
                ? el("div", { class: "muted" }, `partial: ${formatBytes(m.bytesPresent)} here`)
                : null,
            ),
            el(
              "td",
              {},
              [m.architecture, m.quantization].filter(Boolean).join(" · ") || "—",
            ),
            el("td", {}, SHA_WORDS[m.sha256?.state ?? "unknown"] ?? m.sha256?.state ?? "—"),
            el(
              "td",
              {},
              m.location === "store"
                ? confirmButton("delete", `Delete ${m.id}?`, async () => {
                  try {
                    installedError.hidden = true;
                    await api.del(`/api/models/installed/${encodeURIComponent(m.id)}`);
                  } catch (err) {
                    installedError.hidden = false;
                    installedError.textContent = errorText(err, "Deleting models");
                  }
                  await loadInstalled();
                  changed();
                }, { class: "delete-model", "aria-label": `Delete ${m.id}` })
                : null,
            ),
          )
        ),
      ),
    );
  }

  async function loadCatalog(): Promise<void> {
    try {
      const { machine, models } = await api.get<
        { machine: { memoryBytes: number }; models: CatalogModel[] }
      >("/api/models/catalog");
      replace(
        catalogBox,
        el("p", { class: "muted" }, `This machine: ${gib(machine.memoryBytes)} of memory.`),
        el(
          "ul",
          { class: "catalog" },
          ...models.map((m) => {
            const pull = el(
              "button",
              { type: "button", class: "catalog-pull", "aria-label": `Pull ${m.id}` },
              "Pull",
            );
            pull.disabled = denied;
            pull.addEventListener("click", () => {
              pullField.value = m.id;
              void startPull();
            });
            // A model Grove cannot run yet is listed for what it needs, never offered.
            const action = m.runs === false
              ? badge(`Grove can't run ${m.architecture ?? "its architecture"} yet`, "none")
              : m.installed
              ? badge("installed", "none")
              : pull;
            return el(
              "li",
              { "data-model": m.id },
              el("strong", {}, m.name),
              " ",
              el(
                "span",
                { class: "muted" },
                m.size > 0
                  ? `${m.id} · ${formatBytes(m.size)}`
                  : m.approxSize
                  ? `${m.id} · about ${formatBytes(m.approxSize)}`
                  : `${m.id} · size not known`,
              ),
              " ",
              m.fits
                ? badge("fits this machine", "ok")
                : m.needsBytes !== null && m.needsBytes > 0
                ? badge(`needs ${gib(m.needsBytes)}`, "warn")
                : badge("memory need unknown", "none"),
              " ",
              action,
            );
          }),
        ),
      );
    } catch (err) {
      replace(catalogBox, el("p", { class: "muted" }, errorText(err, "The model catalog")));
    }
  }

  async function startPull(): Promise<void> {
    const model = pullField.value.trim();
    if (model === "" || pulling) return;
    const aborter = pulling = new AbortController();
    setPulling(true);
    pullResult.textContent = "";
    pullResult.className = "";
    progress.set("Starting the download");
    let outcome: { ok: boolean; text: string } | null = null;
    try {
      await api.ndjson("/api/models/pull", { model }, (line) => {
        if (line.status === "downloading") {
          progress.set(`Downloading ${model}`, line as Record<string, number>);
        } else if (line.status === "installed") {
          const entry = line.model as Installed;
          outcome = { ok: true, text: `Installed ${entry.id}.` };
        } else if (line.status === "error") {
          const error = line.error as { message?: string } | undefined;
          outcome = { ok: false, text: `Pull failed: ${error?.message ?? "no reason given"}` };
        }
      }, aborter.signal);
      outcome ??= { ok: false, text: "The pull ended without saying how." };
    } catch (err) {
      outcome = aborter.signal.aborted
        ? { ok: false, text: "Pull cancelled; pulling again resumes it." }
        : { ok: false, text: `Pull failed: ${errorText(err, "Pulling models")}` };
    } finally {
      pulling = null;
      setPulling(false);
    }
    progress.set(null);
    pullResult.textContent = outcome.text;
    pullResult.className = outcome.ok ? "ok-text" : "error";
    await Promise.all([loadInstalled(), loadCatalog()]);
    changed();
  }

  function setPulling(on: boolean): void {
    pullButton.disabled = on || denied;
    pullField.disabled = on;
    cancelButton.hidden = !on;
  }

  pullForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void startPull();
  });
  cancelButton.addEventListener("click", () => pulling?.abort());
  void loadInstalled();
  void loadCatalog();

  return {
    update(snapshot: Snapshot) {
      if (snapshot.denied === denied) return;
      denied = snapshot.denied;
      pullButton.disabled = denied || pulling !== null;
      for (const b of catalogBox.querySelectorAll<HTMLButtonElement>("button.catalog-pull")) {
        b.disabled = denied;
      }
    },
  };
}
