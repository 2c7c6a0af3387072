/**
 * GGUF v3 writer. Metadata and the tensor directory are encoded in memory
 * (they are small next to the weights); tensor data is streamed to disk one
 * tensor at a time, and a tensor's bytes may come from a callback so a
 * converter never holds more than one tensor.
 *
 * Metadata typing rule (mirrors gguf-py's defaults; wrap a value to choose):
 * - string → STRING, boolean → BOOL, bigint → U64 (I64 when negative);
 * - a number that is an integer → U32 when it fits, else I32 when it fits,
 *   else I64 (U64 if positive); any other number → F32. So a float that
 *   happens to be whole, like a rope base of 10000, must be written `f32(10000)`;
 * - a plain array takes its item type from its items: strings → STRING,
 *   booleans → BOOL, numbers → I32 when all are integers (gguf-py's token
 *   types), else F32; an empty plain array is refused (give it `arr(type, [])`);
 * - Float32Array → F32 array, Int32Array → I32 array, Uint32Array → U32 array,
 *   Uint8Array → U8 array.
 */
import { byteLengthOf, type GgmlType, ggmlTypeName } from "../../inference/mod.ts";
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  type GgufFile,
  type GgufValue,
  type GgufValueKind,
  GgufValueType as V,
  MIN_VALUE_BYTES,
} from "../../inference/mod.ts";

/** A metadata value whose stored GGUF type is stated explicitly. */
export class TypedValue {
  constructor(readonly kind: GgufValueKind, readonly value: GgufValue) {}
}

export type MetaValue =
  | string
  | boolean
  | number
  | bigint
  | TypedValue
  | MetaValue[]
  | Float32Array
  | Int32Array
  | Uint32Array
  | Uint8Array;

export const u8 = (v: number) => new TypedValue({ type: V.U8 }, v);
export const i8 = (v: number) => new TypedValue({ type: V.I8 }, v);
export const u16 = (v: number) => new TypedValue({ type: V.U16 }, v);
export const i16 = (v: number) => new TypedValue({ type: V.I16 }, v);
export const u32 = (v: number) => new TypedValue({ type: V.U32 }, v);
export const i32 = (v: number) => new TypedValue({ type: V.I32 }, v);
export const u64 = (v: number | bigint) => new TypedValue({ type: V.U64 }, v);
export const i64 = (v: number | bigint) => new TypedValue({ type: V.I64 }, v);
export const f32 = (v: number) => new TypedValue({ type: V.F32 }, v);
export const f64 = (v: number) => new TypedValue({ type: V.F64 }, v);
export const bool = (v: boolean) => new TypedValue({ type: V.BOOL }, v);
export const str = (v: string) => new TypedValue({ type: V.STRING }, v);
/** An array whose items all have the scalar type `item`. */
export const arr = (item: V, values: GgufValue[]) =>
  new TypedValue({ type: V.ARRAY, item: { type: item } }, values);

/** The metadata of a file read by `openGguf`, each value keeping its stored type. */
export function typedMetadata(file: GgufFile): Record<string, MetaValue> {
  const out: Record<string, MetaValue> = {};
  for (const [key, value] of Object.entries(file.metadata)) {
    out[key] = new TypedValue(file.metadataKinds[key], value);
  }
  return out;
}

export interface TensorSpec {
  name: string;
  dims: number[]; // ggml order: dims[0] is the row length
  type: GgmlType;
  /** The bytes, or a callback giving them when the writer reaches this tensor. */
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

export interface GgufContents {
  metadata: Record<string, MetaValue>;
  tensors: TensorSpec[];
}

/** A growable little-endian byte buffer for the header. */
class Sink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // room() may replace buf and view, so it runs before either is read.
  u8(v: number) {
    const at = this.room(1);
    this.view.setUint8(at, v);
  }
  u32(v: number) {
    const at = this.room(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint) {
    const at = this.room(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array) {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
}

const INT_RANGE: Partial<Record<V, [number | bigint, number | bigint]>> = {
  [V.U8]: [0, 0xff],
  [V.I8]: [-0x80, 0x7f],
  [V.U16]: [0, 0xffff],
  [V.I16]: [-0x8000, 0x7fff],
  [V.U32]: [0, 0xffffffff],
  [V.I32]: [-0x80000000, 0x7fffffff],
  [V.U64]: [0n, 0xffffffffffffffffn],
  [V.I64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

function encodeScalar(s: Sink, type: V, v: GgufValue, key: string): void {
  const bad = (): never => {
    throw new Error(`metadata "${key}": ${JSON.stringify(String(v))} is not a valid ${V[type]}`);
  };
  if (type === V.STRING) return typeof v === "string" ? s.string(v) : bad();
  if (type === V.BOOL) return typeof v === "boolean" ? s.u8(v ? 1 : 0) : bad();
  if (type === V.F32 || type === V.F64) {
    if (typeof v !== "number") bad();
    const at = s.length;
    s.bytes(new Uint8Array(type === V.F32 ? 4 : 8));
    if (type === V.F32) s.view.setFloat32(at, v as number, true);
    else s.view.setFloat64(at, v as number, true);
    return;
  }
  const range = INT_RANGE[type];
  if (!range) throw new Error(`metadata "${key}": ${V[type] ?? type} is not a scalar type`);
  if (typeof v === "number" && !Number.isInteger(v)) bad();
  if (typeof v !== "number" && typeof v !== "bigint") bad();
  const b = BigInt(v as number | bigint);
  if (b < BigInt(range[0]) || b > BigInt(range[1])) bad();
  const at = s.length;
  s.bytes(new Uint8Array(MIN_VALUE_BYTES[type]));
  const dv = s.view;
  if (type === V.U8) dv.setUint8(at, Number(b));
  else if (type === V.I8) dv.setInt8(at, Number(b));
  else if (type === V.U16) dv.setUint16(at, Number(b), true);
  else if (type === V.I16) dv.setInt16(at, Number(b), true);
  else if (type === V.U32) dv.setUint32(at, Number(b), true);
  else if (type === V.I32) dv.setInt32(at, Number(b), true);
  else if (type === V.U64) dv.setBigUint64(at, b, true);
  else dv.setBigInt64(at, b, true);
}

/** Encodes a value of a known kind (type plus, for arrays, the item kind). */
function encodeKind(s: Sink, kind: GgufValueKind, v: GgufValue, key: string): void {
  if (kind.type !== V.ARRAY) return encodeScalar(s, kind.type, v, key);
  if (!Array.isArray(v)) throw new Error(`metadata "${key}": an ARRAY value must be an array`);
  const item = kind.item ?? { type: V.U8 };
  s.u32(item.type);
  s.u64(v.length);
  for (const x of v) {
    // Nested arrays may differ in their inner item type; infer it for each.
    if (item.type === V.ARRAY) encodeMeta(s, x as MetaValue, key, false);
    else encodeScalar(s, item.type, x, key);
  }
}

/** The kind the typing rule in this file's header gives a plain value. */
export function inferKind(v: MetaValue, key: string): [GgufValueKind, GgufValue] {
  if (v instanceof TypedValue) return [v.kind, v.value];
  if (typeof v === "string") return [{ type: V.STRING }, v];
  if (typeof v === "boolean") return [{ type: V.BOOL }, v];
  if (typeof v === "bigint") return [{ type: v < 0n ? V.I64 : V.U64 }, v];
  if (typeof v === "number") return [{ type: numberType(v) }, v];
  if (v instanceof Float32Array) return [{ type: V.ARRAY, item: { type: V.F32 } }, Array.from(v)];
  if (v instanceof Int32Array) return [{ type: V.ARRAY, item: { type: V.I32 } }, Array.from(v)];
  if (v instanceof Uint32Array) return [{ type: V.ARRAY, item: { type: V.U32 } }, Array.from(v)];
  if (v instanceof Uint8Array) return [{ type: V.ARRAY, item: { type: V.U8 } }, Array.from(v)];
  if (v.length === 0) {
    throw new Error(`metadata "${key}": an empty array needs an explicit type, e.g. arr(type, [])`);
  }
  if (v.every((x) => typeof x === "number")) {
    const allInts = (v as number[]).every(Number.isInteger);
    return [{ type: V.ARRAY, item: { type: allInts ? V.I32 : V.F32 } }, v as number[]];
  }
  const items = v.map((x) => inferKind(x, key));
  const item = items[0][0];
  for (const [kind] of items) {
    if (kind.type !== item.type) {
      throw new Error(`metadata "${key}": array mixes ${V[item.type]} and ${V[kind.type]} items`);
    }
  }
  return [{ type: V.ARRAY, item }, items.map(([, value]) => value)];
}

function numberType(v: number): V {
  if (!Number.isInteger(v)) return V.F32;
  if (v >= 0 && v <= 0xffffffff) return V.U32;
  if (v >= -0x80000000 && v < 0) return V.I32;
  return v < 0 ? V.I64 : V.U64;
}

function encodeMeta(s: Sink, v: MetaValue, key: string, withType: boolean): void {
  const [kind, value] = inferKind(v, key);
  if (withType) s.u32(kind.type);
  encodeKind(s, kind, value, key);
}

function alignmentOf(metadata: Record<string, MetaValue>): number {
  const raw = metadata["general.alignment"];
  if (raw === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const [kind, a] = inferKind(raw, "general.alignment");
  if (kind.type !== V.U32 || typeof a !== "number" || a <= 0 || (a & (a - 1)) !== 0) {
    throw new Error(`general.alignment must be a u32 power of two, got ${String(a)}`);
  }
  return a;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/** Writes a GGUF v3 file; it appears at `path` only once complete. */
export async function writeGguf(path: string, contents: GgufContents): Promise<void> {
  const alignment = alignmentOf(contents.metadata);
  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(contents.tensors.length);
  s.u64(Object.keys(contents.metadata).length);
  for (const [key, value] of Object.entries(contents.metadata)) {
    s.string(key);
    encodeMeta(s, value, key, true);
  }
  const sizes = tensorSizes(contents.tensors);
  let offset = 0;
  contents.tensors.forEach((t, i) => {
    s.string(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(t.type);
    s.u64(offset);
    offset = padTo(offset + sizes[i], alignment);
  });
  s.bytes(new Uint8Array(padTo(s.length, alignment) - s.length));

  const tmp = `${path}.partial-${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, s.buf.subarray(0, s.length));
    for (const [i, t] of contents.tensors.entries()) {
      const data = typeof t.data === "function" ? await t.data() : t.data;
      if (data.length !== sizes[i]) {
        throw new Error(
          `tensor "${t.name}": got ${data.length} bytes, but ${ggmlTypeName(t.type)} ` +
            `[${t.dims.join(", ")}] takes ${sizes[i]}`,
        );
      }
      await writeAll(file, data);
      await writeAll(file, new Uint8Array(padTo(data.length, alignment) - data.length));
    }
    file.close();
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

function tensorSizes(tensors: TensorSpec[]): number[] {
  const names = new Set<string>();
  return tensors.map((t) => {
    if (names.has(t.name)) throw new Error(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4) {
      throw new Error(`tensor "${t.name}" has ${t.dims.length} dimensions; GGUF takes 1 to 4`);
    }
    try {
      byteLengthOf(t.type, t.dims[0]); // rows must fill whole blocks
      return byteLengthOf(t.type, t.dims.reduce((a, b) => a * b, 1));
    } catch (e) {
      throw new Error(`tensor "${t.name}" [${t.dims.join(", ")}]: ${(e as Error).message}`);
    }
  });
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
