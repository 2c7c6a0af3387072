/**
 * Frames of `/grove/stage/1` (docs/protocol.md#grovestage1). Hidden states travel as raw bytes
 * beside a JSON header: as JSON numbers they would be ~3× larger and cost a parse per value.
 *
 * A frame is an unsigned LEB128 varint body length (as protocol/framing.ts), then the body: a
 * varint header length, that many bytes of UTF-8 JSON, and the payload: little-endian f32 values,
 * the rows stacked in the header's order. A reader refuses a frame whose declared length passes
 * its limit before reading the body, and hands each payload over in its own Float32Array (aligned,
 * so the engine can use it in place).
 */

import { ByteQueue, MAX_VARINT_BYTES, peekVarint, varint } from "../protocol/mod.ts";

/** The JSON header of one frame. A step's rows and a last stage's picks fit well within it. */
export const MAX_STAGE_HEADER_BYTES = 1 << 20;

/**
 * The most hidden-state bytes one frame carries: a full step (512 rows, the engines' default
 * `maxRows`) of the widest residual stream of current open models (16,384), in f32. A stage whose
 * rows would not fit declares fewer rows per step.
 */
export const MAX_STAGE_PAYLOAD_BYTES = 512 * 16384 * 4;

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

export interface StageFrame {
  header: unknown;
  /** Empty when the frame carries no hidden states. */
  payload: Float32Array;
}

/** A frame that breaks the format or a limit: the stream cannot be read past it. */
export class StageFrameError extends Error {
  override name = "StageFrameError";
}

/** The byte limit of a frame carrying at most `rows` rows of `dim` f32 values. */
export function stageFrameLimit(rows: number, dim: number): number {
  return MAX_STAGE_HEADER_BYTES + MAX_VARINT_BYTES + rows * dim * 4;
}

export function encodeStageFrame(header: unknown, payload?: Float32Array): Uint8Array {
  const json = JSON.stringify(header);
  if (json === undefined) throw new Error("a stage frame header is not JSON-serializable");
  const head = new TextEncoder().encode(json);
  const payloadBytes = payload ? payload.length * 4 : 0;
  const headPrefix = varint(head.length);
  const bodyLength = headPrefix.length + head.length + payloadBytes;
  const bodyPrefix = varint(bodyLength);
  const out = new Uint8Array(bodyPrefix.length + bodyLength);
  out.set(bodyPrefix, 0);
  out.set(headPrefix, bodyPrefix.length);
  const at = bodyPrefix.length + headPrefix.length;
  out.set(head, at);
  if (payload) writeF32(out, at + head.length, payload);
  return out;
}

type Chunk = Uint8Array | { subarray(): Uint8Array };

/**
 * Yields each frame. `maxBytes` is asked before every frame (a stage's limit grows once it knows
 * its rows and width). Throws StageFrameError when a frame declares more than that, when a
 * header is not UTF-8 JSON or does not fit its frame, when a payload is not whole f32 values, or
 * when the stream ends mid-frame; the source's own errors pass through.
 */
export async function* readStageFrames(
  source: AsyncIterable<Chunk>,
  maxBytes: () => number,
): AsyncGenerator<StageFrame> {
  const q = new ByteQueue();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let index = 0;
  for await (const chunk of source) {
    q.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
    while (true) {
      const length = readVarint(q, q.length, index);
      if (length === undefined) break;
      const [size, prefixLength] = length;
      const limit = maxBytes();
      if (size > limit) {
        throw new StageFrameError(`frame ${index} is ${size} bytes, over the ${limit}-byte limit`);
      }
      if (q.length < prefixLength + size) break;
      q.skip(prefixLength);
      yield readBody(q, size, index, decoder);
      index++;
    }
  }
  if (q.length > 0) {
    throw new StageFrameError(`the stream ended inside frame ${index} (${q.length} bytes left)`);
  }
}

function readBody(q: ByteQueue, size: number, index: number, decoder: TextDecoder): StageFrame {
  const headLength = readVarint(q, size, index);
  if (headLength === undefined || headLength[0] + headLength[1] > size) {
    throw new StageFrameError(`frame ${index}'s header length runs past its ${size} bytes`);
  }
  const [headSize, prefixLength] = headLength;
  if (headSize > MAX_STAGE_HEADER_BYTES) {
    throw new StageFrameError(
      `frame ${index}'s header is ${headSize} bytes, over the ${MAX_STAGE_HEADER_BYTES}-byte limit`,
    );
  }
  const payloadBytes = size - prefixLength - headSize;
  if (payloadBytes % 4 !== 0) {
    throw new StageFrameError(`frame ${index}'s payload (${payloadBytes} bytes) is not f32 values`);
  }
  q.skip(prefixLength);
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(q.take(headSize)));
  } catch {
    throw new StageFrameError(`frame ${index}'s header (${headSize} bytes) is not UTF-8 JSON`);
  }
  const payload = new Float32Array(payloadBytes / 4);
  if (LITTLE_ENDIAN) q.takeInto(new Uint8Array(payload.buffer));
  else readF32(q.take(payloadBytes), payload);
  return { header, payload };
}

/** A varint within the queue's first `within` bytes: [value, its bytes], or undefined if cut. */
function readVarint(q: ByteQueue, within: number, index: number): [number, number] | undefined {
  try {
    return peekVarint(q, within);
  } catch (err) {
    throw new StageFrameError(`frame ${index}: ${(err as Error).message}`);
  }
}

function writeF32(out: Uint8Array, at: number, values: Float32Array): void {
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + at, values.length * 4);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
}

function readF32(bytes: Uint8Array, out: Float32Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
}
