/**
 * The HTTP edge's limits on what a request may carry, each default in one place.
 */

/**
 * The largest request body the OpenAI routes (/v1) read, unless `--max-body` says otherwise:
 * 8 MiB, what a context can hold. The longest contexts served today are 131,072 tokens; at 64
 * bytes of JSON a token (a long token such as a run of spaces, escaped) that is 8 MiB, while real
 * text is far smaller (English ≈ 4 bytes a token, CJK escaped as \uXXXX ≈ 9). So every prompt
 * that fits a context fits the body, and a 100 MiB body is refused before it is read.
 */
export const DEFAULT_MAX_BODY = 8 * 1024 * 1024;

/**
 * Every other route: the node API's small JSON commands (start, stop). A route outside /v1 that
 * carries a prompt (llama.cpp's /tokenize, Ollama's /api/chat, when they come) must be given the
 * /v1 limit in app.ts.
 */
export const NODE_API_MAX_BODY = 64 * 1024;

/** "8 MiB", "64 KiB", "1000 bytes": a limit as people read it. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} bytes`;
}
