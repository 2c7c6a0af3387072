/**
 * OpenAI's error shape, `{"error":{"message","type","code"}}`, and the
 * status each failure gets (docs/http-api.md#errors).
 */
import { MESH_DENIED_MESSAGE, ServiceError, type ServiceErrorCode } from "../mesh/mod.ts";

export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param?: string | null };
}

/** A failure the HTTP layer answers itself (bad input, a missing key, a route it lacks). */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    public status: number,
    message: string,
    public type: string,
    public code: string | null,
    public param?: string,
  ) {
    super(message);
  }
}

/** A bad body or parameter; `param` names the field, as OpenAI does. */
export function invalidRequest(message: string, param?: string): HttpError {
  return new HttpError(400, message, "invalid_request_error", "invalid_request_error", param);
}

const SERVICE_STATUS: Record<ServiceErrorCode, { status: number; type: string }> = {
  mesh_denied: { status: 403, type: "llm_auth" },
  model_not_found: { status: 404, type: "invalid_request_error" },
  unavailable: { status: 503, type: "unavailable_error" },
  context_length_exceeded: { status: 400, type: "invalid_request_error" },
  invalid_request: { status: 400, type: "invalid_request_error" },
  busy: { status: 503, type: "unavailable_error" },
};

export function serviceHttpError(err: ServiceError): HttpError {
  const { status, type } = SERVICE_STATUS[err.code];
  // The denial text is fixed (docs/http-api.md#errors), whatever the mesh said.
  const message = err.code === "mesh_denied" ? MESH_DENIED_MESSAGE : err.message;
  const code = err.code === "invalid_request" ? "invalid_request_error" : err.code;
  return new HttpError(status, message, type, code);
}

/** Anything thrown in a route, as an HttpError; unknown failures are 500s that say what broke. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ServiceError) return serviceHttpError(err);
  const message = err instanceof Error ? err.message : String(err);
  return new HttpError(500, `internal error: ${message}`, "server_error", "internal_error");
}

export function errorBody(err: HttpError): ErrorBody {
  const body: ErrorBody = { error: { message: err.message, type: err.type, code: err.code } };
  if (err.param !== undefined) body.error.param = err.param;
  return body;
}

export function errorResponse(err: unknown, headers: HeadersInit = {}): Response {
  const http = toHttpError(err);
  return Response.json(errorBody(http), { status: http.status, headers });
}
