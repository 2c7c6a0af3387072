/** The JSON error body of the relay's admission endpoint (docs/protocol.md#admission). */
export function jsonError(
  code: string,
  message: string,
): { error: { code: string; message: string } } {
  return { error: { code, message } };
}
