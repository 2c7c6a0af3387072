/**
 * Server-sent events as OpenAI streams them: `data: JSON\n\n` per chunk,
 * `data: [DONE]\n\n` at the end. The body is pulled on demand, so a client
 * that stops reading stops the producer, and one that goes away cancels it.
 */

export const SSE_DONE = "data: [DONE]\n\n";

export function sseEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no", // a reverse proxy must not sit on the tokens
};

/** `events` yields whole SSE frames; `onCancel` runs when the client goes away mid-stream. */
export function sseResponse(events: AsyncIterable<string>, onCancel: () => void): Response {
  const it = events[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const step = await it.next();
        if (step.done) controller.close();
        else controller.enqueue(encoder.encode(step.value));
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      onCancel();
      await it.return?.();
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers: SSE_HEADERS });
}

/** Reads an SSE body back into its `data:` payloads (tests, and peers relaying a stream). */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data !== "") yield data;
    }
  }
}
