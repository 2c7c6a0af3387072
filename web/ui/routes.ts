/**
 * GET /ui and its two assets: the dashboard (docs/http-api.md#dashboard). Model output and
 * member-supplied names are drawn on a page that shares its origin with the node's controls, so
 * the page runs under a Content-Security-Policy that allows only its own script and style
 * files: no inline script, no eval, no request beyond this node, no framing.
 */
import { readFileSync } from "node:fs";

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const ASSETS = {
  "/ui": { file: "index.html", type: "text/html; charset=utf-8" },
  "/ui/dashboard.js": { file: "dashboard.js", type: "text/javascript; charset=utf-8" },
  "/ui/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
} as const;

export type DashboardPath = keyof typeof ASSETS;
export const DASHBOARD_PATHS = Object.keys(ASSETS) as DashboardPath[];

const cache = new Map<DashboardPath, string>();

/** The asset's text, read from beside this file once (the page is small and never changes). */
function asset(path: DashboardPath): string {
  let text = cache.get(path);
  if (text === undefined) {
    text = readFileSync(new URL(`./${ASSETS[path].file}`, import.meta.url), "utf8");
    cache.set(path, text);
  }
  return text;
}

export function dashboardResponse(path: DashboardPath): Response {
  return new Response(asset(path), {
    headers: {
      "content-type": ASSETS[path].type,
      "content-security-policy": DASHBOARD_CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
      "cache-control": "no-cache",
    },
  });
}
