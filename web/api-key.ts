/**
 * The --api-key check (docs/http-api.md#browsers: a node bound beyond loopback
 * demands one): `Authorization: Bearer KEY` (or Anthropic's `x-api-key: KEY`) on every route but
 * the public ones.
 */
import type { MiddlewareHandler } from "hono";
import { errorResponse, HttpError } from "./http-error.ts";

/** Liveness probes and the dashboard page itself need no key; the page asks for it. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  "/health",
  "/ui",
  "/ui/",
  "/ui/dashboard.js",
  "/ui/style.css",
]);

export function apiKeyAuth(key: string): MiddlewareHandler {
  if (key === "") throw new Error("--api-key must not be empty");
  const expected = new TextEncoder().encode(key);
  return async function checkApiKey(c, next) {
    if (PUBLIC_PATHS.has(c.req.path)) return await next();
    const header = c.req.header("authorization") ?? "";
    // Anthropic's clients send the key as x-api-key instead.
    const given = /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? c.req.header("x-api-key");
    if (given === undefined || !sameBytes(new TextEncoder().encode(given.trim()), expected)) {
      return errorResponse(
        new HttpError(
          401,
          given === undefined
            ? "This node needs an API key: send Authorization: Bearer <key> (or x-api-key)."
            : "Incorrect API key.",
          "authentication_error",
          "invalid_api_key",
        ),
        { "www-authenticate": 'Bearer realm="grove"' },
      );
    }
    await next();
  };
}

/** Compares in time independent of where the first difference is. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}
