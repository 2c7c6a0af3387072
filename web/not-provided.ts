import { HttpError } from "./http-error.ts";

/** A node API route whose hook the node was started without: 501 saying what is missing. */
export function notProvided(what: string, hook: string): HttpError {
  return new HttpError(
    501,
    `${what} is not available on this node: it was started without a "${hook}" hook`,
    "not_implemented_error",
    "not_implemented",
  );
}
