/// <reference lib="dom" />
/**
 * A small line chart of the last requests' timings (GET /api/timings): one point per request,
 * oldest on the left, the y axis from 0 to the largest value. Drawn in pixels at the width it
 * gets; the latest value and the range are text, also in the <desc>.
 */
import { svg } from "./dom.ts";

export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  values: (number | null)[];
}

const H = 120;
const PAD_L = 40;
const PAD_R = 10;
const PAD_T = 22;
const PAD_B = 16;

function fmt(v: number): string {
  return v >= 100 ? String(Math.round(v)) : v.toFixed(1);
}

export function drawChart(spec: ChartSpec, width: number): SVGSVGElement {
  const w = Math.max(220, Math.round(width));
  const points = spec.values
    .map((v, i) => ({ v, i }))
    .filter((p): p is { v: number; i: number } => p.v !== null && Number.isFinite(p.v));
  const max = Math.max(1, ...points.map((p) => p.v));
  const n = Math.max(2, spec.values.length);
  const x = (i: number) =>
    PAD_L + (w - PAD_L - PAD_R) * (spec.values.length === 1 ? 0.5 : i / (n - 1));
  const y = (v: number) => PAD_T + (H - PAD_T - PAD_B) * (1 - v / max);
  const last = points[points.length - 1];
  const summary = points.length === 0
    ? "no requests yet"
    : `latest ${fmt(last.v)} ${spec.unit}, highest ${
      fmt(max)
    } ${spec.unit}, ${points.length} requests`;
  const titleId = `${spec.id}-title`;
  const descId = `${spec.id}-desc`;
  return svg(
    "svg",
    {
      id: spec.id,
      class: "chart",
      viewBox: `0 0 ${w} ${H}`,
      width: w,
      height: H,
      role: "img",
      "aria-labelledby": `${titleId} ${descId}`,
      "data-points": points.length,
    },
    svg("title", { id: titleId }, spec.title),
    svg("desc", { id: descId }, `${spec.title}: ${summary}.`),
    svg(
      "text",
      { x: 4, y: 14, class: "chart-title" },
      points.length === 0
        ? `${spec.title} · no requests yet`
        : `${spec.title} · latest ${fmt(last.v)} ${spec.unit}`,
    ),
    svg("line", { x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B, class: "axis" }),
    svg("line", { x1: PAD_L, y1: H - PAD_B, x2: w - PAD_R, y2: H - PAD_B, class: "axis" }),
    svg("text", { x: PAD_L - 4, y: PAD_T + 4, class: "axis-text", "text-anchor": "end" }, fmt(max)),
    svg("text", { x: PAD_L - 4, y: H - PAD_B, class: "axis-text", "text-anchor": "end" }, "0"),
    points.length > 1
      ? svg("polyline", {
        points: points.map((p) => `${x(p.i).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "),
        class: "chart-line",
      })
      : null,
    ...points.map((p) =>
      svg(
        "circle",
        { cx: x(p.i), cy: y(p.v), r: 3, class: "point" },
        svg("title", {}, `${fmt(p.v)} ${spec.unit}`),
      )
    ),
  );
}
