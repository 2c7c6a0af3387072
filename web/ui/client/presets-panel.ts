/// <reference lib="dom" />
/** The presets panel: filled in by its owner (see the design notes). */
import { append, el } from "./dom.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";

export function createPresetsPanel(ctx: PanelContext): Panel {
  const body = el("div", { class: "muted" }, "…");
  append(ctx.root, body);
  return {
    update(_snapshot: Snapshot) {},
  };
}
