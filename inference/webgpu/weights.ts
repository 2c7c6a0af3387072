/**
 * Weights on the device in their stored ggml form: the raw (possibly
 * quantized) bytes of a Matrix, never dequantized on the host. A matrix larger
 * than one storage binding is split by whole rows into several buffers; the
 * kernels dispatch once per buffer with a row offset. On software adapters
 * Q4_0 / Q4_K matrices may instead sit in textures in the "rows4" layout
 * (rows4-layout.ts), which only the rows4 kernels read.
 */
import { type GgmlType, ggmlTypeName } from "../ggml-type.ts";
import { bytesFor } from "../quant/mod.ts";
import type { Matrix } from "../weights.ts";
import { repackRows4, rows4Texels } from "./rows4-layout.ts";

export interface GpuMatrixPart {
  /** Layout "rows": the encoded rows, as stored in the GGUF. */
  buffer: GPUBuffer;
  /** Index of this part's first row in the whole matrix. */
  firstRow: number;
  rows: number;
}

export interface GpuMatrixTexturePart {
  /** Layout "rows4": rgba32uint, one texture row per 4 matrix rows. */
  texture: GPUTexture;
  view: GPUTextureView;
  firstRow: number;
  rows: number;
}

interface GpuMatrixBase {
  name: string;
  type: GgmlType;
  rows: number;
  cols: number;
  /** Bytes of one encoded row (not always a multiple of 4: kernels read bytes out of u32 words). */
  rowBytes: number;
  /** Device memory of this matrix, for destroyMatrix. */
  memory: (GPUBuffer | GPUTexture)[];
}

export interface GpuRowsMatrix extends GpuMatrixBase {
  layout: "rows";
  parts: GpuMatrixPart[];
}

export interface GpuRows4Matrix extends GpuMatrixBase {
  layout: "rows4";
  parts: GpuMatrixTexturePart[];
}

export type GpuMatrix = GpuRowsMatrix | GpuRows4Matrix;
export type GpuMatrixLayout = GpuMatrix["layout"];

export interface UploadOptions {
  /** "rows" (default): storage buffers any kernel reads; "rows4": textures for the rows4 kernels. */
  layout?: GpuMatrixLayout;
  /** Largest buffer to bind (default: the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** rows4: most matrix rows per texture (default: 4 x maxTextureDimension2D). */
  maxTextureRows?: number;
  /** rows: each buffer holds a multiple of this many rows (a MoE stack's whole experts). */
  rowsMultiple?: number;
}

/** The define that selects a weight type's decoding in every kernel's WGSL, e.g. W_Q4_K. */
export function weightDefine(type: GgmlType): string {
  return `W_${ggmlTypeName(type)}`;
}

/** `m` as rows-layout storage buffers, or a clear error naming the kernel that needs them. */
export function rowsMatrix(m: GpuMatrix, kernel: string): GpuRowsMatrix {
  if (m.layout !== "rows") {
    throw new Error(`${kernel}: ${m.name} is in the ${m.layout} layout, this kernel reads rows`);
  }
  return m;
}

// Kernels may read one u32 word past a block that ends mid-word; the slack keeps that in bounds.
const SLACK = 4;

function padded(bytes: number): number {
  return Math.ceil((bytes + SLACK) / 16) * 16;
}

/** Uploads `m`'s encoded rows in the chosen layout. */
export function uploadMatrix(device: GPUDevice, m: Matrix, opts: UploadOptions = {}): GpuMatrix {
  const rowBytes = bytesFor(m.type, m.cols);
  if (m.data.length < m.rows * rowBytes) {
    throw new Error(
      `uploadMatrix ${m.name}: ${m.rows}x${m.cols} ${ggmlTypeName(m.type)} needs ` +
        `${m.rows * rowBytes} bytes, got ${m.data.length}`,
    );
  }
  return opts.layout === "rows4"
    ? uploadRows4(device, m, rowBytes, opts)
    : uploadRows(device, m, rowBytes, opts);
}

function describe(m: Matrix, rowBytes: number) {
  return { name: m.name, type: m.type, rows: m.rows, cols: m.cols, rowBytes };
}

function uploadRows(
  device: GPUDevice,
  m: Matrix,
  rowBytes: number,
  opts: UploadOptions,
): GpuRowsMatrix {
  const limit = Math.min(
    opts.maxBindingBytes ?? device.limits.maxStorageBufferBindingSize,
    device.limits.maxStorageBufferBindingSize,
    device.limits.maxBufferSize,
  );
  const multiple = opts.rowsMultiple ?? 1;
  const fit = Math.floor((limit - 16 - SLACK) / rowBytes);
  const rowsPerBuffer = Math.min(m.rows, fit - fit % multiple);
  if (rowsPerBuffer < 1) {
    throw new Error(
      `uploadMatrix ${m.name}: one row (${rowBytes} bytes) exceeds the binding limit ${limit}`,
    );
  }
  const parts: GpuMatrixPart[] = [];
  for (let first = 0; first < m.rows; first += rowsPerBuffer) {
    const rows = Math.min(rowsPerBuffer, m.rows - first);
    const bytes = rows * rowBytes;
    const buffer = device.createBuffer({
      label: `${m.name}[${first}..${first + rows})`,
      size: padded(bytes),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange(), 0, bytes)
      .set(m.data.subarray(first * rowBytes, first * rowBytes + bytes));
    buffer.unmap();
    parts.push({ buffer, firstRow: first, rows });
  }
  // A 0-row matrix still gets one (empty) part so bindings stay valid.
  if (parts.length === 0) {
    const buffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    parts.push({ buffer, firstRow: 0, rows: 0 });
  }
  return { ...describe(m, rowBytes), layout: "rows", parts, memory: parts.map((p) => p.buffer) };
}

function uploadRows4(
  device: GPUDevice,
  m: Matrix,
  rowBytes: number,
  opts: UploadOptions,
): GpuRows4Matrix {
  const width = rows4Texels(m.cols);
  const maxSide = device.limits.maxTextureDimension2D;
  if (width > maxSide) {
    throw new Error(
      `uploadMatrix ${m.name}: rows of ${m.cols} values need ${width} texels, ` +
        `maxTextureDimension2D is ${maxSide}`,
    );
  }
  const perTexture = Math.min(opts.maxTextureRows ?? Infinity, 4 * maxSide);
  if (perTexture < 4 || perTexture % 4 !== 0) {
    throw new Error(`uploadMatrix ${m.name}: maxTextureRows ${perTexture} is not a multiple of 4`);
  }
  const parts: GpuMatrixTexturePart[] = [];
  // A 0-row matrix still gets one (empty) part so bindings stay valid.
  for (let first = 0; first < Math.max(1, m.rows); first += perTexture) {
    const rows = Math.min(perTexture, m.rows - first);
    const groups = Math.max(1, Math.ceil(rows / 4));
    const texture = device.createTexture({
      label: `${m.name}[${first}..${first + rows}) rows4`,
      size: [width, groups],
      format: "rgba32uint",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    if (rows > 0) {
      const words = repackRows4(m.type, m.data, m.cols, first, rows);
      device.queue.writeTexture({ texture }, words, { bytesPerRow: width * 16 }, [width, groups]);
    }
    parts.push({ texture, view: texture.createView(), firstRow: first, rows: Math.max(0, rows) });
  }
  return {
    ...describe(m, rowBytes),
    layout: "rows4",
    parts,
    memory: parts.map((p) => p.texture),
  };
}

/** A storage buffer with `data` (f32), e.g. a norm weight or bias. */
export function uploadVector(device: GPUDevice, data: Float32Array, label = "vector"): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    mappedAtCreation: true,
  });
  new Float32Array(buffer.getMappedRange(), 0, data.length).set(data);
  buffer.unmap();
  return buffer;
}

export function destroyMatrix(m: GpuMatrix): void {
  for (const b of m.memory) b.destroy();
}
