/**
 * Length-prefixed JSON messages for mesh streams (docs/protocol.md#framing). Each frame is an
 * unsigned LEB128 varint byte length (the prefix `it-length-prefixed` uses by default) followed by
 * that many bytes of UTF-8 JSON.
 */

import { ByteQueue, peekVarint, varint } from "./byte-queue.ts";

export function encodeFrame(obj: unknown): Uint8Array {
  const json = JSON.stringify(obj);
  if (json === undefined) throw new Error("frame value is not JSON-serializable");
  const body = new TextEncoder().encode(json);
  const prefix = varint(body.length);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

type Chunk = Uint8Array | { subarray(): Uint8Array };

/**
 * Yields each frame's parsed JSON. Throws when a frame declares more than `maxBytes`
 * (before reading its body), when a body is not UTF-8 JSON, or when the stream ends mid-frame.
 */
export async function* readFrames(
  source: AsyncIterable<Chunk>,
  maxBytes: number,
): AsyncGenerator<unknown> {
  const q = new ByteQueue();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let index = 0;
  for await (const chunk of source) {
    q.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
    while (true) {
      const header = peekVarint(q);
      if (header === undefined) break;
      const [size, prefixLength] = header;
      if (size > maxBytes) {
        throw new Error(`frame ${index} is ${size} bytes, over the ${maxBytes}-byte limit`);
      }
      if (q.length < prefixLength + size) break;
      q.take(prefixLength);
      const body = q.take(size);
      let value: unknown;
      try {
        value = JSON.parse(decoder.decode(body));
      } catch {
        throw new Error(`frame ${index} (${size} bytes) is not UTF-8 JSON`);
      }
      index++;
      yield value;
    }
  }
  if (q.length > 0) {
    throw new Error(`stream ended inside frame ${index} (${q.length} bytes left over)`);
  }
}
