/**
 * Weights on the device in their stored ggml form: the raw (possibly
 * quantized) bytes of a Matrix, never dequantized on the host. A matrix larger
 * than one storage binding is split by whole rows into several buffers; the
 * kernels dispatch once per buffer with a row offset.
 */
import { ggmlTypeName } from "../ggml-type.ts";
import { bytesFor } from "../quant/mod.ts";
import type { Matrix } from "../weights.ts";
import type { GgmlType } from "../ggml-type.ts";

export interface GpuMatrixPart {
  buffer: GPUBuffer;
  /** Index of this buffer's first row in the whole matrix. */
  firstRow: number;
  rows: number;
}

export interface GpuMatrix {
  name: string;
  type: GgmlType;
  rows: number;
  cols: number;
  /** Bytes of one encoded row (not always a multiple of 4: kernels read bytes out of u32 words). */
  rowBytes: number;
  /** Rows per buffer (the last part may hold fewer). */
  rowsPerBuffer: number;
  parts: GpuMatrixPart[];
  buffers: GPUBuffer[];
}

export interface UploadOptions {
  /** Largest buffer to bind (default: the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
}

// Kernels may read one u32 word past a block that ends mid-word; the slack keeps that in bounds.
const SLACK = 4;

function padded(bytes: number): number {
  return Math.ceil((bytes + SLACK) / 16) * 16;
}

/** Uploads `m`'s encoded rows as one or more storage buffers. */
export function uploadMatrix(device: GPUDevice, m: Matrix, opts: UploadOptions = {}): GpuMatrix {
  const rowBytes = bytesFor(m.type, m.cols);
  if (m.data.length < m.rows * rowBytes) {
    throw new Error(
      `uploadMatrix ${m.name}: ${m.rows}x${m.cols} ${ggmlTypeName(m.type)} needs ` +
        `${m.rows * rowBytes} bytes, got ${m.data.length}`,
    );
  }
  const limit = Math.min(
    opts.maxBindingBytes ?? device.limits.maxStorageBufferBindingSize,
    device.limits.maxStorageBufferBindingSize,
    device.limits.maxBufferSize,
  );
  const rowsPerBuffer = Math.min(m.rows, Math.floor((limit - 16 - SLACK) / rowBytes));
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
  return {
    name: m.name,
    type: m.type,
    rows: m.rows,
    cols: m.cols,
    rowBytes,
    rowsPerBuffer: Math.max(1, rowsPerBuffer),
    parts,
    buffers: parts.map((p) => p.buffer),
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
  for (const b of m.buffers) b.destroy();
}
