/// <reference lib="dom" />
/** The mesh panel: filled in by its owner (see the design notes). */
import { append, el } from "./dom.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";

export function createMeshPanel(ctx: PanelContext): Panel {
  const body = el("div", { class: "muted" }, "…");
  append(ctx.root, body);
  return {
    update(_snapshot: Snapshot) {},
  };
}
