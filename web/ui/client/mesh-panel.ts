/// <reference lib="dom" />
/**
 * The mesh panel (#mesh): the picture of the members' serving nodes (mesh-picture.ts) and two
 * live charts of this node's last answers (GET /api/timings): tokens/s and time to first token.
 * Redrawn at every poll, at the width the panel has then.
 */
import { api } from "./api.ts";
import { append, el, replace } from "./dom.ts";
import { drawChart } from "./charts.ts";
import { drawMesh } from "./mesh-picture.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";

interface Timing {
  at: number;
  modelId: string | null;
  ttftMs: number;
  tokensPerSecond: number | null;
}

export function createMeshPanel(ctx: PanelContext): Panel {
  const picture = el("div", { id: "mesh-picture", class: "mesh-wrap" });
  const relay = el("p", { id: "mesh-relay", class: "muted" });
  const charts = el("div", { id: "mesh-charts", class: "mesh-charts" });
  const speed = el("div", { class: "chart-box" });
  const ttft = el("div", { class: "chart-box" });
  append(charts, speed, ttft);
  append(ctx.root, relay, picture, charts);
  let recent: Timing[] = [];
  let fetching = false;

  const widthOf = (node: HTMLElement) => node.clientWidth || ctx.root.clientWidth - 28;

  function drawCharts(): void {
    replace(
      speed,
      drawChart({
        id: "chart-tps",
        title: "Tokens/s",
        unit: "tokens/s",
        values: recent.map((r) => r.tokensPerSecond),
      }, widthOf(speed)),
    );
    replace(
      ttft,
      drawChart({
        id: "chart-ttft",
        title: "Time to first token",
        unit: "ms",
        values: recent.map((r) => r.ttftMs),
      }, widthOf(ttft)),
    );
  }

  async function readTimings(): Promise<void> {
    if (fetching) return;
    fetching = true;
    try {
      recent = (await api.get<{ recent: Timing[] }>("/api/timings")).recent;
      drawCharts();
    } catch {
      // the poll's banner already says when the node cannot be read
    } finally {
      fetching = false;
    }
  }

  return {
    update(s: Snapshot) {
      if (s.error !== null) return;
      const r = s.status?.relay;
      relay.textContent = r
        ? `Relay ${r.url}: ${r.connected ? "connected" : "not connected"}`
        : "This node is not in a mesh (a local model only).";
      replace(
        picture,
        drawMesh(s.status, s.availability?.serveTargets ?? [], widthOf(picture)),
      );
      drawCharts();
      void readTimings();
    },
  };
}
