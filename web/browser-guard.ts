/**
 * Which web pages may use a node (docs/http-api.md#browsers). A node listens on 127.0.0.1, which
 * every page the user opens can reach; two attacks follow, and both are refused here:
 *
 * - DNS rebinding: a page on the attacker's name re-points that name at 127.0.0.1, so its
 *   requests reach the node as same-origin and can read the answers, but they carry
 *   `Host: attacker.name`. Only loopback names, the machine's own addresses the node listens on
 *   and names the operator allowed (`--allow-host`) pass. The port is not compared: the name is
 *   what the attacker controls, and honest port forwards and proxies (`ssh -L 8080:…`) change it.
 *   /health is exempt: probes use whatever name they like, and it tells only "ok".
 * - Cross-site requests (CSRF): any page can POST a form or `text/plain` to the node without a
 *   preflight. Browsers name the page in `Origin` on every such request, so only the node's own
 *   pages (the dashboard: Origin's host:port is the request's Host) and origins the operator
 *   allowed (`--allow-origin`, with CORS headers) pass. A page's requests without Origin
 *   (images, scripts, navigations) carry `Sec-Fetch-Site`; cross-site ones are refused too, but
 *   following a link to the dashboard.
 *
 * Requests with neither (curl, SDKs, agents) are not a page's: they pass. The node API's commands
 * (POST /api/node/start, /stop, …) take only the node's own pages or an origin named exactly:
 * `--allow-origin *` does not reach them. All of it is a few header reads and string compares.
 */
import type { MiddlewareHandler } from "hono";
import { errorResponse, HttpError } from "./http-error.ts";
import { hostnameOf, isLoopbackName } from "./host-names.ts";
import { OLLAMA_INFERENCE_PATHS } from "./ollama-request.ts";

export interface BrowserAccess {
  /** `--allow-host`: names (or addresses) besides loopback that `Host` may carry. */
  hosts?: readonly string[];
  /** The machine's own addresses the node listens on; asked only for names not allowed yet. */
  isOwnAddress?: (hostname: string) => boolean;
  /** `--allow-origin`: exact origins ("http://app.example:3000"), or "*" for every page. */
  origins?: readonly string[];
}

/** What an allowed origin may send; SDKs add their own headers, listed by the preflight. */
const CORS_METHODS = "GET, POST, DELETE, OPTIONS";
const CORS_HEADERS = "Authorization, Content-Type";
const CORS_MAX_AGE = "600";

export function browserGuard(access: BrowserAccess = {}): MiddlewareHandler {
  const hosts = new Set((access.hosts ?? []).map(hostnameOf));
  const origins = new Set((access.origins ?? []).map((o) => o.toLowerCase()));
  const anyOrigin = origins.has("*");
  const hostAllowed = (name: string) =>
    isLoopbackName(name) || hosts.has(name) || (access.isOwnAddress?.(name) ?? false);

  return async function guardBrowsers(c, next) {
    const req = c.req.raw;
    const path = c.req.path;
    // HTTP/1.0 requests may lack Host; Deno then names the URL "localhost".
    const host = req.headers.get("host") ?? new URL(req.url).host;
    if (path !== "/health" && !hostAllowed(hostnameOf(host))) return refuseHost(host);

    const origin = req.headers.get("origin");
    if (origin === null) {
      const site = req.headers.get("sec-fetch-site");
      if ((site === "cross-site" || site === "same-site") && !isPageVisit(req, path)) {
        return refuseSite(site);
      }
      return await next();
    }
    if (isSameOrigin(origin, host)) return await next();

    const preflight = req.method === "OPTIONS" && req.headers.has("access-control-request-method");
    const method = preflight ? req.headers.get("access-control-request-method")! : req.method;
    const command = path.startsWith("/api/") && !OLLAMA_INFERENCE_PATHS.has(path) &&
      method !== "GET" && method !== "HEAD";
    const named = origins.has(origin.toLowerCase());
    if (!named && !(anyOrigin && !command)) return refuseOrigin(origin, anyOrigin && command);

    if (preflight) {
      return new Response(null, {
        status: 204,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": CORS_METHODS,
          "access-control-allow-headers": requestedHeaders(req) ?? CORS_HEADERS,
          "access-control-max-age": CORS_MAX_AGE,
          "vary": "Origin, Access-Control-Request-Headers",
        },
      });
    }
    await next();
    allowOrigin(c.res, origin);
  };
}

function allowOrigin(res: Response, origin: string): void {
  res.headers.set("access-control-allow-origin", origin);
  res.headers.append("vary", "Origin");
}

/** The dashboard's own requests: Origin is the scheme plus exactly the Host it asked for. */
function isSameOrigin(origin: string, host: string): boolean {
  const o = origin.toLowerCase();
  const h = host.toLowerCase();
  // https: the same page behind a TLS proxy that keeps Host.
  return o === `http://${h}` || o === `https://${h}`;
}

/** Following a link to the dashboard from another site: a page load, which reads nothing. */
function isPageVisit(req: Request, path: string): boolean {
  return (req.method === "GET" || req.method === "HEAD") &&
    (path === "/ui" || path === "/ui/" || path === "/") &&
    req.headers.get("sec-fetch-mode") === "navigate";
}

/** The headers a preflight asks for, when they read as a list of header names. */
function requestedHeaders(req: Request): string | undefined {
  const asked = req.headers.get("access-control-request-headers");
  if (asked === null || !/^[\w-]+(\s*,\s*[\w-]+)*$/.test(asked.trim())) return undefined;
  return asked.trim();
}

function forbidden(message: string, code: string): Response {
  return errorResponse(new HttpError(403, message, "permission_error", code));
}

function refuseHost(host: string): Response {
  const name = hostnameOf(host);
  return forbidden(
    `Refused a request for the host "${host}": this node answers only to loopback, its own ` +
      "addresses and names allowed with --allow-host (a web page using DNS rebinding sends its " +
      `own name). If you reach the node by this name, start it with --allow-host ${name}.`,
    "host_not_allowed",
  );
}

function refuseOrigin(origin: string, wildcardOnly: boolean): Response {
  const why = wildcardOnly
    ? "the node API's commands take only the node's own pages or an origin named exactly " +
      "(--allow-origin * does not reach them)"
    : "browsers may use this node only from its own pages or an origin allowed with " +
      "--allow-origin";
  return forbidden(
    `Refused a request from the web page at ${origin}: ${why}. To allow that page, start the ` +
      `node with --allow-origin ${origin}.`,
    "origin_not_allowed",
  );
}

function refuseSite(site: string): Response {
  return forbidden(
    `Refused a request a web page made (Sec-Fetch-Site: ${site}): browsers may use this node ` +
      "only from its own pages or an origin allowed with --allow-origin.",
    "origin_not_allowed",
  );
}
