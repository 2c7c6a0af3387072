/// <reference lib="dom" />
/**
 * The mesh as a picture: this node on top, under it each model the mesh offers and the nodes
 * serving it, a line from this node to each (solid: its own connection, dashed: through the
 * relay, dotted: not connected yet), the node's load, and for a split model a bar of its layers
 * cut into the share each node holds. Drawn in pixels at the width it gets, so text stays
 * readable on a phone; every fact is also in the SVG's <desc> for screen readers.
 */
import { svg } from "./dom.ts";
import type { NodeStatus, ServeTargetView } from "./types.ts";

type Path = "direct" | "relayed" | null | "self";

interface NodeRow {
  target: ServeTargetView;
  path: Path;
  /** Which colour its layers get in the model's bar. */
  slot: number;
}

interface ModelGroup {
  modelId: string;
  modelName: string;
  nodes: NodeRow[];
  /** Layers of the whole model, as far as the stages show; 0 when none is split. */
  layers: number;
}

const PATH_WORDS: Record<string, string> = {
  direct: "direct",
  relayed: "relayed",
  none: "not connected yet",
  self: "this node",
};

export function groupTargets(status: NodeStatus | null, targets: ServeTargetView[]): ModelGroup[] {
  const paths = new Map((status?.peers ?? []).map((p) => [p.peerId, p.path ?? null]));
  const groups = new Map<string, ModelGroup>();
  for (const target of targets) {
    let group = groups.get(target.modelId);
    if (!group) {
      group = {
        modelId: target.modelId,
        modelName: target.modelName ?? target.modelId,
        nodes: [],
        layers: 0,
      };
      groups.set(target.modelId, group);
    }
    const self = status?.peerId !== undefined && target.peerId === status.peerId;
    group.nodes.push({
      target,
      path: self ? "self" : paths.get(target.peerId) ?? null,
      slot: group.nodes.length,
    });
    for (const [, end] of target.stages ?? []) group.layers = Math.max(group.layers, end);
  }
  return [...groups.values()];
}

/** `text` cut to about `px` pixels of 13 px text, with an ellipsis when cut. */
function fit(text: string, px: number): string {
  const chars = Math.max(4, Math.floor(px / 7.2));
  return text.length <= chars ? text : `${text.slice(0, chars - 1)}…`;
}

function layersOf(target: ServeTargetView): string {
  const stages = target.stages;
  if (!stages) return "whole model";
  if (stages.length === 0) return "waiting for a split";
  return `layers ${stages.map(([a, b]) => `${a}–${b - 1}`).join(", ")}`;
}

function loadOf(target: ServeTargetView): string {
  const load = target.load;
  return load ? `${load.active} active · ${load.queued} queued` : "load unknown";
}

export function describeMesh(status: NodeStatus | null, groups: ModelGroup[]): string {
  if (groups.length === 0) return "No serving node in the mesh right now.";
  const lines = groups.map((g) =>
    `${g.modelName}: ` +
    g.nodes.map((n) =>
      `${n.target.nodeName ?? n.target.peerId} (${PATH_WORDS[n.path ?? "none"]}, ${
        loadOf(n.target)
      }, ${layersOf(n.target)})`
    ).join("; ")
  );
  return `This node${status?.mode ? ` (${status.mode})` : ""}. ${lines.join(". ")}.`;
}

const ROW = 58;
const HEAD = 26;
const BAR = 22;
const SELF_H = 40;
const TRUNK_X = 18;
const CARD_X = 44;

export function drawMesh(
  status: NodeStatus | null,
  targets: ServeTargetView[],
  width: number,
): SVGSVGElement {
  const w = Math.max(280, Math.round(width));
  const groups = groupTargets(status, targets);
  const parts: SVGElement[] = [];
  let y = 0;

  const selfLabel = status
    ? `This node · ${status.mode}${status.modelId ? ` · ${status.modelId}` : ""}`
    : "This node";
  parts.push(
    svg(
      "g",
      { class: "mesh-self" },
      svg("rect", { x: 1, y: 1, width: w - 2, height: SELF_H - 2, rx: 8, class: "self-box" }),
      svg("text", { x: 12, y: 25, class: "node-name" }, fit(selfLabel, w - 24)),
    ),
  );
  y = SELF_H + 10;
  const branches: number[] = [];

  if (groups.length === 0) {
    parts.push(
      svg("text", { x: CARD_X, y: y + 18, class: "muted-text" }, "No serving node right now."),
    );
    y += 30;
  }
  for (const group of groups) {
    const split = group.layers > 0;
    parts.push(svg(
      "text",
      { x: CARD_X, y: y + 17, class: "model-name" },
      fit(
        split
          ? `${group.modelId} · split: ${group.layers} layers`
          : `${group.modelId} · ${group.nodes.length} node${group.nodes.length === 1 ? "" : "s"}`,
        w - CARD_X - 8,
      ),
    ));
    y += HEAD;
    if (split) {
      const barW = w - CARD_X - 8;
      const segs: SVGElement[] = [
        svg("rect", { x: CARD_X, y, width: barW, height: BAR - 6, rx: 4, class: "bar-back" }),
      ];
      for (const node of group.nodes) {
        for (const [start, end] of node.target.stages ?? []) {
          const x = CARD_X + barW * start / group.layers;
          const sw = barW * (end - start) / group.layers;
          segs.push(svg(
            "rect",
            {
              x: x + 1,
              y: y + 1,
              width: Math.max(2, sw - 2),
              height: BAR - 8,
              rx: 3,
              class: `seg seg-${node.slot % 6}`,
              "data-layers": `${start}-${end}`,
            },
            svg(
              "title",
              {},
              `${node.target.nodeName ?? node.target.peerId}: ${layersOf(node.target)}`,
            ),
          ));
        }
      }
      parts.push(svg("g", { class: "stage-bar", "data-model": group.modelId }, ...segs));
      y += BAR;
    }
    for (const node of group.nodes) {
      const t = node.target;
      const path = node.path ?? "none";
      const mid = y + ROW / 2 - 4;
      branches.push(mid);
      const cardW = w - CARD_X - 2;
      parts.push(svg(
        "g",
        {
          class: `mesh-node path-${path}`,
          "data-peer": t.peerId,
          "data-path": path,
          "data-model": t.modelId,
        },
        svg("line", { x1: TRUNK_X, y1: mid, x2: CARD_X, y2: mid, class: `link link-${path}` }),
        svg("rect", {
          x: CARD_X,
          y,
          width: cardW,
          height: ROW - 8,
          rx: 7,
          class: `node-box${split ? ` seg-edge-${node.slot % 6}` : ""}`,
        }),
        svg(
          "text",
          { x: CARD_X + 10, y: y + 19, class: "node-name" },
          fit(`${t.nodeName ?? t.peerId.slice(0, 12)} · ${PATH_WORDS[path]}`, cardW - 20),
        ),
        svg(
          "text",
          { x: CARD_X + 10, y: y + 38, class: "node-facts" },
          fit(`${loadOf(t)} · ${layersOf(t)}`, cardW - 20),
        ),
      ));
      y += ROW;
    }
    y += 6;
  }
  if (branches.length > 0) {
    parts.unshift(svg("line", {
      x1: TRUNK_X,
      y1: SELF_H - 1,
      x2: TRUNK_X,
      y2: branches[branches.length - 1],
      class: "trunk",
    }));
  }

  // The legend: what each kind of line means.
  const legend: SVGElement[] = [];
  let lx = 4;
  for (const path of ["direct", "relayed", "none"]) {
    const span = 32 + PATH_WORDS[path].length * 7.5 + 16;
    if (lx > 4 && lx + span > w) [lx, y] = [4, y + 22]; // a narrow screen: the next row
    legend.push(
      svg("line", { x1: lx, y1: y + 12, x2: lx + 26, y2: y + 12, class: `link link-${path}` }),
      svg("text", { x: lx + 32, y: y + 16, class: "legend-text" }, PATH_WORDS[path]),
    );
    lx += span;
  }
  parts.push(svg("g", { class: "legend" }, ...legend));
  y += 26;

  return svg(
    "svg",
    {
      class: "mesh-picture",
      viewBox: `0 0 ${w} ${y}`,
      width: w,
      height: y,
      role: "img",
      "aria-labelledby": "mesh-picture-title mesh-picture-desc",
    },
    svg(
      "title",
      { id: "mesh-picture-title" },
      "The mesh: serving nodes and how this node reaches them",
    ),
    svg("desc", { id: "mesh-picture-desc" }, describeMesh(status, groups)),
    ...parts,
  );
}
