/** The JSON error body every Grove HTTP endpoint answers with (SPEC §4). */
export function jsonError(
  code: string,
  message: string,
): { error: { code: string; message: string } } {
  return { error: { code, message } };
}
