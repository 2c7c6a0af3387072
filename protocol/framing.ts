/**
 * Length-prefixed JSON messages for mesh streams (docs/protocol.md#framing). Each frame is an
 * unsigned LEB128 varint byte length (the prefix `it-length-prefixed` uses by default) followed by
 * that many bytes of UTF-8 JSON.
 */

/** Longest varint accepted: 5 bytes carry 35 bits, plenty for any sane frame limit. */
const MAX_VARINT_BYTES = 5;

export function encodeFrame(obj: unknown): Uint8Array {
  const json = JSON.stringify(obj);
  if (json === undefined) throw new Error("frame value is not JSON-serializable");
  const body = new TextEncoder().encode(json);
  const prefix: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  prefix.push(n);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

type Chunk = Uint8Array | { subarray(): Uint8Array };

/** Chunks held until a whole frame is there; taking n bytes copies them once. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  length = 0;

  push(c: Uint8Array) {
    if (c.length === 0) return;
    this.chunks.push(c);
    this.length += c.length;
  }

  peek(i: number): number {
    for (const c of this.chunks) {
      if (i < c.length) return c[i];
      i -= c.length;
    }
    throw new RangeError("peek past the end");
  }

  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - filled);
      out.set(c.subarray(0, k), filled);
      filled += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

/** Reads a varint at the queue's front: [value, prefix bytes], or undefined if incomplete. */
function readVarint(q: ByteQueue): [number, number] | undefined {
  let value = 0;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (i >= q.length) return undefined;
    const b = q.peek(i);
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  throw new Error(`frame length prefix is longer than ${MAX_VARINT_BYTES} bytes`);
}

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
      const header = readVarint(q);
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
