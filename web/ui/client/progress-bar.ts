/// <reference lib="dom" />
/**
 * A download or load progress bar with its words ("12 MiB of 30 MiB · 2.1 MiB/s · 14 s left"):
 * the share panel shows the node's start, the models panel a pull, from the same fields
 * (`bytes`, `total`, `rate`, `eta`) that /api/status and the pull's NDJSON lines carry.
 */
import { el, formatBytes, formatSeconds } from "./dom.ts";

export interface ProgressFields {
  bytes?: number;
  total?: number | null;
  rate?: number;
  eta?: number | null;
}

export interface ProgressBar {
  root: HTMLElement;
  /** null hides the bar. */
  set(label: string | null, fields?: ProgressFields): void;
}

export function createProgressBar(id: string): ProgressBar {
  const bar = el("progress", { id: `${id}-bar`, max: 1 });
  const words = el("div", {
    id: `${id}-text`,
    class: "muted progress-text",
    "aria-live": "polite",
  });
  const root = el("div", { id, class: "progress", hidden: true }, bar, words);
  return {
    root,
    set(label, fields = {}) {
      root.hidden = label === null;
      if (label === null) return;
      const { bytes, total } = fields;
      if (typeof bytes === "number" && typeof total === "number" && total > 0) {
        bar.max = total;
        bar.value = Math.min(bytes, total);
      } else {
        // Indeterminate: the node does not know how much is left.
        bar.removeAttribute("value");
      }
      words.textContent = describe(label, fields);
      bar.setAttribute("aria-label", words.textContent);
    },
  };
}

/** "Downloading: 12 MiB of 30 MiB (40%) · 2.1 MiB/s · 14 s left". */
export function describe(label: string, fields: ProgressFields): string {
  const parts: string[] = [];
  const { bytes, total, rate, eta } = fields;
  if (typeof bytes === "number") {
    if (typeof total === "number" && total > 0) {
      parts.push(
        `${formatBytes(bytes)} of ${formatBytes(total)} (${Math.floor((bytes / total) * 100)}%)`,
      );
    } else parts.push(formatBytes(bytes));
  }
  if (typeof rate === "number" && rate > 0) parts.push(`${formatBytes(rate)}/s`);
  if (typeof eta === "number") parts.push(`${formatSeconds(eta)} left`);
  return parts.length === 0 ? label : `${label}: ${parts.join(" · ")}`;
}
