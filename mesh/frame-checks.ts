/**
 * The small checks a request frame's parser (embed-request.ts, tokenizer-request.ts) and an
 * answer's reader apply to what a peer sent: JSON it is, shapes it is not trusted to have.
 */
import { ServiceError } from "./service.ts";

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A token id as the mesh carries one: a whole number below 2³¹. */
export function isTokenId(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 31;
}

/** A peer's text as an error message shows it: 64 characters at most. */
export function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 60)}…` : text;
}

/** The request is refused: no serving node would take it. */
export function fail(message: string): never {
  throw new ServiceError("invalid_request", message);
}
