/**
 * A request body over its route's limit is refused with 413 before it is read whole: at once
 * when Content-Length says so (the server frames the body by it, so never delivers more), and
 * for chunked bodies as soon as the bytes read pass the limit, the rest left unread.
 */
import type { MiddlewareHandler } from "hono";
import { errorResponse, HttpError } from "./http-error.ts";
import { formatBytes } from "./limits.ts";

export interface BodyLimit {
  bytes: number;
  /** The flag that raises it, named in the refusal. */
  flag?: string;
}

export function bodyLimit(limitFor: (path: string) => BodyLimit): MiddlewareHandler {
  return async function limitBody(c, next) {
    const req = c.req.raw;
    // No route reads a GET's body, so it is never read at all.
    if (req.body === null || req.method === "GET" || req.method === "HEAD") return await next();
    const limit = limitFor(c.req.path);
    const declared = req.headers.get("content-length");
    if (declared !== null && !req.headers.has("transfer-encoding")) {
      if (Number(declared) > limit.bytes) return tooLarge(limit);
      return await next();
    }
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    let size = 0;
    const reader = req.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > limit.bytes) {
          reader.cancel().catch(() => {});
          return tooLarge(limit);
        }
        chunks.push(value);
      }
    } catch (err) {
      throw new HttpError(
        400,
        `the request body could not be read: ${err instanceof Error ? err.message : err}`,
        "invalid_request_error",
        "invalid_request_error",
      );
    }
    c.req.raw = new Request(req, { body: new Blob(chunks) });
    await next();
  };
}

function tooLarge(limit: BodyLimit): Response {
  const raise = limit.flag ? `; a node started with ${limit.flag} SIZE accepts more` : "";
  return errorResponse(
    new HttpError(
      413,
      `The request body is larger than the ${formatBytes(limit.bytes)} (${limit.bytes} bytes) ` +
        `this route accepts${raise}.`,
      "invalid_request_error",
      "request_too_large",
    ),
    // The unread rest of the body cannot be skipped cheaply: end the connection after this.
    { connection: "close" },
  );
}
