/**
 * GGUF reader (versions 2 and 3, little-endian): the header, metadata and
 * tensor directory are parsed through buffered positional reads, so a
 * multi-GB model costs only its directory; tensor data is read per tensor.
 * Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
 * metadata key/value pairs, tensor infos, padding to `general.alignment`,
 * then the tensor data, each tensor's offset relative to the data start.
 */
import { blockGeometry, type GgmlType, GgmlType as T, ggmlTypeName } from "./ggml-type.ts";

export type GgufValue = string | number | bigint | boolean | GgufValue[];

/** GGUF's metadata value type codes (`enum gguf_type`). */
export enum GgufValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** The stored type of a metadata value; `item` is the element type of an array. */
export interface GgufValueKind {
  type: GgufValueType;
  item?: GgufValueKind;
}

export interface GgufTensorInfo {
  name: string;
  dims: number[]; // ggml order: dims[0] is the row length (innermost), dims[1] the row count...
  type: GgmlType;
  offset: number; // absolute byte offset of the data in the file
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  fileSize: number;
  dataOffset: number;
  metadata: Record<string, GgufValue>; // u64/i64 become number when safe, else bigint
  /** The stored type of each metadata value, so a writer can copy it faithfully. */
  metadataKinds: Record<string, GgufValueKind>;
  tensors: GgufTensorInfo[];
  tensor(name: string): GgufTensorInfo | undefined;
  /**
   * Bytes read from the file so far: the header's reads, then every readTensorData of this
   * file, so a pipeline stage can show it read only its share.
   */
  bytesRead: number;
}

export class GgufError extends Error {
  override name = "GgufError";
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4; // GGML_MAX_DIMS

/** Smallest encoding of each value type, to reject counts the rest of the file cannot hold. */
export const MIN_VALUE_BYTES: Record<GgufValueType, number> = {
  [GgufValueType.U8]: 1,
  [GgufValueType.I8]: 1,
  [GgufValueType.U16]: 2,
  [GgufValueType.I16]: 2,
  [GgufValueType.U32]: 4,
  [GgufValueType.I32]: 4,
  [GgufValueType.F32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.STRING]: 8,
  [GgufValueType.ARRAY]: 12,
  [GgufValueType.U64]: 8,
  [GgufValueType.I64]: 8,
  [GgufValueType.F64]: 8,
};

// Header reads start small and double up to CHUNK: a small model's header costs a few KiB,
// not a megabyte of tensor data, and a 150k-token vocabulary still a handful of reads.
const FIRST_CHUNK = 16 << 10;
const CHUNK = 1 << 20;
// ignoreBOM: a token that is exactly U+FEFF (llama and phi-3 vocabs have one) must survive.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A read cursor over a file with a refillable window. The `...Now` reads are
 * synchronous and assume `short(n)` was checked (and `fill(n)` awaited): that
 * keeps a 150k-string vocabulary from costing an await per string.
 */
class Reader {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private start = 0; // file offset of buf[0]
  private end = 0; // file offset just past the valid bytes in buf
  pos = 0; // absolute file position of the cursor
  what = "header"; // what is being read, for error messages
  bytesRead = 0;
  private chunk = FIRST_CHUNK;

  constructor(readonly file: Deno.FsFile, readonly fileSize: number, readonly path: string) {}

  fail(message: string): never {
    throw new GgufError(`${this.path}: ${message}`);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  short(n: number): boolean {
    return this.end - this.pos < n;
  }

  async fill(n: number): Promise<void> {
    if (this.pos + n > this.fileSize) {
      this.fail(
        `truncated file: ${this.what} needs ${n} bytes at offset ${this.pos}, ` +
          `but the file ends at ${this.fileSize}`,
      );
    }
    const len = Math.min(Math.max(n, this.chunk), this.fileSize - this.pos);
    this.chunk = Math.min(this.chunk * 2, CHUNK);
    if (this.buf.length < len) {
      this.buf = new Uint8Array(Math.max(len, this.chunk));
      this.view = new DataView(this.buf.buffer);
    }
    await this.file.seek(this.pos, Deno.SeekMode.Start);
    let got = 0;
    while (got < len) {
      const r = await this.file.read(this.buf.subarray(got, len));
      if (r === null) {
        this.fail(`file shrank while reading ${this.what} at offset ${this.pos + got}`);
      }
      got += r;
    }
    this.bytesRead += len;
    this.start = this.pos;
    this.end = this.pos + len;
  }

  private take(n: number): number {
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }

  u32Now(): number {
    return this.view.getUint32(this.take(4), true);
  }

  /** A u64 that must be a safe integer: a count, length, dimension or offset. */
  sizeNow(what: string): number {
    const v = this.view.getBigUint64(this.take(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`absurd ${what}: ${v}`);
    return Number(v);
  }

  textNow(n: number): string {
    const at = this.take(n);
    return utf8.decode(this.buf.subarray(at, at + n));
  }

  scalarNow(type: GgufValueType): GgufValue {
    const v = this.view;
    const at = this.take(MIN_VALUE_BYTES[type]);
    switch (type) {
      case GgufValueType.U8:
        return v.getUint8(at);
      case GgufValueType.I8:
        return v.getInt8(at);
      case GgufValueType.U16:
        return v.getUint16(at, true);
      case GgufValueType.I16:
        return v.getInt16(at, true);
      case GgufValueType.U32:
        return v.getUint32(at, true);
      case GgufValueType.I32:
        return v.getInt32(at, true);
      case GgufValueType.F32:
        return v.getFloat32(at, true);
      case GgufValueType.BOOL:
        return v.getUint8(at) !== 0;
      case GgufValueType.U64:
        return safeNumber(v.getBigUint64(at, true));
      case GgufValueType.I64:
        return safeNumber(v.getBigInt64(at, true));
      case GgufValueType.F64:
        return v.getFloat64(at, true);
    }
    throw new Error(`not a scalar type: ${type}`);
  }

  async u32(): Promise<number> {
    if (this.short(4)) await this.fill(4);
    return this.u32Now();
  }

  async size(what: string): Promise<number> {
    if (this.short(8)) await this.fill(8);
    return this.sizeNow(what);
  }

  async string(what: string): Promise<string> {
    const len = await this.size(`length of ${what}`);
    if (len > this.remaining) {
      this.fail(`absurd length of ${what}: ${len} bytes, but only ${this.remaining} remain`);
    }
    if (this.short(len)) await this.fill(len);
    return this.textNow(len);
  }

  async valueType(what: string): Promise<GgufValueType> {
    const type = await this.u32();
    if (!(type in MIN_VALUE_BYTES)) this.fail(`unknown metadata value type ${type} in ${what}`);
    return type;
  }

  async value(type: GgufValueType, what: string): Promise<[GgufValue, GgufValueKind]> {
    if (type === GgufValueType.STRING) return [await this.string(what), { type }];
    if (type !== GgufValueType.ARRAY) {
      const n = MIN_VALUE_BYTES[type];
      if (this.short(n)) await this.fill(n);
      return [this.scalarNow(type), { type }];
    }
    const itemType = await this.valueType(what);
    const count = await this.size(`array length of ${what}`);
    if (count * MIN_VALUE_BYTES[itemType] > this.remaining) {
      this.fail(
        `absurd array length of ${what}: ${count} items, but only ${this.remaining} bytes remain`,
      );
    }
    const out: GgufValue[] = new Array(count);
    let item: GgufValueKind = { type: itemType };
    if (itemType === GgufValueType.ARRAY) {
      for (let i = 0; i < count; i++) [out[i], item] = await this.value(itemType, what);
    } else if (itemType === GgufValueType.STRING) {
      for (let i = 0; i < count; i++) {
        if (this.short(8)) await this.fill(8);
        const len = this.sizeNow(`length of a string in ${what}`);
        if (len > this.remaining) {
          this.fail(
            `absurd length of a string in ${what}: ${len} bytes, but only ${this.remaining} remain`,
          );
        }
        if (this.short(len)) await this.fill(len);
        out[i] = this.textNow(len);
      }
    } else {
      const n = MIN_VALUE_BYTES[itemType];
      for (let i = 0; i < count; i++) {
        if (this.short(n)) await this.fill(n);
        out[i] = this.scalarNow(itemType);
      }
    }
    return [out, { type, item }];
  }
}

function safeNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(v)
    : v;
}

/** Reads the header, metadata and tensor directory of a GGUF file (no tensor data). */
export async function openGguf(path: string): Promise<GgufFile> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    return await parse(new Reader(file, size, path));
  } finally {
    file.close();
  }
}

async function parse(r: Reader): Promise<GgufFile> {
  if (r.fileSize < 8) r.fail(`not a GGUF file: only ${r.fileSize} bytes`);
  const magic = await r.u32();
  if (magic !== GGUF_MAGIC) {
    const bytes = [0, 8, 16, 24].map((s) => (magic >>> s) & 0xff);
    const text = String.fromCharCode(...bytes).replace(/[^\x20-\x7e]/g, "?");
    r.fail(`not a GGUF file: magic is "${text}" (0x${magic.toString(16)}), expected "GGUF"`);
  }
  const version = await r.u32();
  // A big-endian file keeps the magic's byte order but stores the version swapped.
  if ((version & 0xffff) === 0 && version !== 0) {
    const swapped = ((version >>> 24) | ((version >>> 8) & 0xff00)) >>> 0;
    r.fail(`big-endian GGUF (version ${swapped}) is not supported; only little-endian`);
  }
  if (version !== 2 && version !== 3) {
    r.fail(`unsupported GGUF version ${version}; this reader handles versions 2 and 3`);
  }
  r.what = "header counts";
  const tensorCount = await r.size("tensor count");
  const kvCount = await r.size("metadata count");
  if (kvCount * 13 > r.remaining || tensorCount * 24 > r.remaining) {
    r.fail(
      `truncated or corrupt header: ${tensorCount} tensors and ${kvCount} metadata entries ` +
        `cannot fit in the remaining ${r.remaining} bytes`,
    );
  }

  const metadata: Record<string, GgufValue> = {};
  const metadataKinds: Record<string, GgufValueKind> = {};
  for (let i = 0; i < kvCount; i++) {
    r.what = `metadata entry #${i}`;
    const key = await r.string(`key of metadata entry #${i}`);
    r.what = `metadata "${key}"`;
    if (key in metadata) r.fail(`duplicate metadata key "${key}"`);
    const type = await r.valueType(`metadata "${key}"`);
    const [value, kind] = await r.value(type, `metadata "${key}"`);
    metadata[key] = value;
    metadataKinds[key] = kind;
  }
  const alignment = readAlignment(r, metadata);

  const directory: { name: string; dims: number[]; type: GgmlType; rel: number; bytes: number }[] =
    [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    r.what = `tensor info #${i}`;
    const name = await r.string(`name of tensor #${i}`);
    r.what = `tensor "${name}"`;
    if (names.has(name)) r.fail(`duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = await r.u32();
    if (nDims > MAX_DIMS) r.fail(`tensor "${name}" has ${nDims} dimensions; at most ${MAX_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(await r.size(`dimension ${d} of tensor "${name}"`));
    const type = await r.u32();
    const rel = await r.size(`offset of tensor "${name}"`);
    directory.push({ name, dims, type, rel, bytes: tensorBytes(r, name, dims, type) });
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const tensors: GgufTensorInfo[] = directory.map(({ name, dims, type, rel, bytes }) => {
    if (rel % alignment !== 0) {
      r.fail(`tensor "${name}" has offset ${rel}, not a multiple of the alignment ${alignment}`);
    }
    const offset = dataOffset + rel;
    if (offset + bytes > r.fileSize) {
      r.fail(
        `truncated file: data of tensor "${name}" (bytes ${offset}..${offset + bytes}) ` +
          `runs past the end of the file at ${r.fileSize}`,
      );
    }
    return { name, dims, type, offset, byteLength: bytes };
  });
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return {
    path: r.path,
    version,
    alignment,
    fileSize: r.fileSize,
    dataOffset,
    metadata,
    metadataKinds,
    tensors,
    tensor: (name) => byName.get(name),
    bytesRead: r.bytesRead,
  };
}

function readAlignment(c: Reader, metadata: Record<string, GgufValue>): number {
  const a = metadata["general.alignment"];
  if (a === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (typeof a !== "number" || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) {
    c.fail(`general.alignment must be a power of two, got ${String(a)}`);
  }
  return a;
}

/** Byte length of a tensor, checking its type code and that its rows fill whole blocks. */
function tensorBytes(c: Reader, name: string, dims: number[], type: number): number {
  const geometry = blockGeometry(type);
  if (!geometry) {
    const known = T[type] !== undefined
      ? ` (${ggmlTypeName(type)}, whose layout is not known)`
      : "";
    c.fail(`tensor "${name}" has unknown type code ${type}${known}`);
  }
  let elements = 1;
  for (const d of dims) elements *= d;
  if (!Number.isSafeInteger(elements)) {
    c.fail(`absurd dimensions of tensor "${name}": [${dims.join(", ")}]`);
  }
  const rowLength = dims[0] ?? 1;
  if (rowLength % geometry.blockSize !== 0) {
    c.fail(
      `tensor "${name}" (${ggmlTypeName(type)}, dims [${dims.join(", ")}]): row length ` +
        `${rowLength} does not fill whole blocks of ${geometry.blockSize}`,
    );
  }
  return (elements / geometry.blockSize) * geometry.typeSize;
}

/**
 * Reads one tensor's bytes from disk, into `into` where given (exactly the tensor's length: e.g.
 * the kernels' own memory, so the weights are held once, not read and then copied there).
 */
export async function readTensorData(
  file: GgufFile,
  info: GgufTensorInfo,
  into?: Uint8Array,
): Promise<Uint8Array> {
  if (into && into.byteLength !== info.byteLength) {
    throw new Error(`tensor "${info.name}" has ${info.byteLength} bytes, not ${into.byteLength}`);
  }
  const out = into ?? new Uint8Array(info.byteLength);
  const f = await Deno.open(file.path, { read: true });
  let got = 0;
  try {
    await f.seek(info.offset, Deno.SeekMode.Start);
    while (got < out.length) {
      const r = await f.read(out.subarray(got));
      if (r === null) {
        throw new GgufError(
          `${file.path}: truncated file: data of tensor "${info.name}" ends at ` +
            `${info.offset + got}, expected ${info.byteLength} bytes from ${info.offset}`,
        );
      }
      got += r;
    }
  } finally {
    file.bytesRead += got;
    f.close();
  }
  return out;
}
