/**
 * What every length-prefixed reader of a stream needs: received chunks held until a whole frame
 * is there (each byte copied out once), and the unsigned LEB128 varints that prefix lengths (the
 * prefix `it-length-prefixed` uses by default). protocol/framing.ts' JSON frames and the stage
 * protocol's binary frames (mesh/stage-frames.ts) both read with them.
 */

/** Longest varint accepted: 5 bytes carry 35 bits, plenty for any sane frame limit. */
export const MAX_VARINT_BYTES = 5;

/** `n` as an unsigned LEB128 varint. */
export function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

export class ByteQueue {
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
    this.takeInto(out);
    return out;
  }

  /** Moves the next `out.length` bytes into `out`. */
  takeInto(out: Uint8Array): void {
    this.consume(out.length, (c, at) => out.set(c, at));
  }

  skip(n: number): void {
    this.consume(n, () => {});
  }

  private consume(n: number, use: (part: Uint8Array, at: number) => void): void {
    let done = 0;
    while (done < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - done);
      use(k === c.length ? c : c.subarray(0, k), done);
      done += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.length -= n;
  }
}

/**
 * The varint at the queue's front, within its first `within` bytes: [value, its bytes], or
 * undefined while it is cut short. Throws when it runs past MAX_VARINT_BYTES.
 */
export function peekVarint(q: ByteQueue, within = q.length): [number, number] | undefined {
  let value = 0;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (i >= within) return undefined;
    const b = q.peek(i);
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  throw new Error(`a length prefix is longer than ${MAX_VARINT_BYTES} bytes`);
}
