/**
 * Helpers for GPU kernel tests: one shared device, f32 upload/readback,
 * seeded random data and a tolerance check that names the worst element.
 */
import { type Gpu, requestGpu } from "../../inference/webgpu/mod.ts";

let shared: Promise<Gpu> | undefined;

/**
 * The test device (one per process, reused by every test). A missing adapter
 * throws GpuUnavailableError: GPU tests fail rather than skip.
 */
export function createTestGpu(): Promise<Gpu> {
  shared ??= requestGpu();
  return shared;
}

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A storage buffer holding `data` (also usable as copy source/destination). */
export function uploadF32(device: GPUDevice, data: Float32Array, label = "f32"): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: Math.max(4, data.byteLength),
    usage: STORAGE,
    mappedAtCreation: true,
  });
  new Float32Array(buffer.getMappedRange()).set(data);
  buffer.unmap();
  return buffer;
}

/** A storage buffer holding `data` (expert ids, ring offsets), of 16 bytes at least. */
export function uploadU32(device: GPUDevice, data: Uint32Array): GPUBuffer {
  const buffer = device.createBuffer({
    size: Math.max(16, data.byteLength),
    usage: STORAGE,
    mappedAtCreation: true,
  });
  new Uint32Array(buffer.getMappedRange(), 0, data.length).set(data);
  buffer.unmap();
  return buffer;
}

/** An uninitialised (zeroed) storage buffer of `n` f32 values. */
export function createF32(device: GPUDevice, n: number, label = "f32 out"): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, n * 4), usage: STORAGE });
}

/** Copies the first `n` f32 values of `buffer` (from byte `offset`) back to the host. */
export async function readF32(
  device: GPUDevice,
  buffer: GPUBuffer,
  n: number,
  offset = 0,
): Promise<Float32Array> {
  const size = Math.max(4, n * 4);
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, n * 4));
  staging.unmap();
  staging.destroy();
  return out;
}

/** Copies the first `n` u32 values of `buffer` back to the host. */
export async function readU32(
  device: GPUDevice,
  buffer: GPUBuffer,
  n: number,
): Promise<Uint32Array> {
  const bits = await readF32(device, buffer, n);
  return new Uint32Array(bits.buffer, bits.byteOffset, n);
}

/** Deterministic uniform values in [-scale, scale) (mulberry32). */
export function randomF32(n: number, seed = 1, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (u * 2 - 1) * scale;
  }
  return out;
}

export interface Tolerance {
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance against |want| (default 1e-4). */
  rtol?: number;
}

/** Throws naming the worst index unless |got - want| <= atol + rtol * |want| everywhere. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: Tolerance = {},
  label = "values",
): void {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-4;
  if (got.length !== want.length) {
    throw new Error(`${label}: got ${got.length} values, want ${want.length}`);
  }
  let bad = 0;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const limit = atol + rtol * Math.abs(want[i]);
    const excess = Number.isNaN(err) ? Infinity : err - limit;
    if (excess > 0) {
      bad++;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    throw new Error(
      `${label}: ${bad}/${got.length} values out of tolerance (atol ${atol}, rtol ${rtol}); ` +
        `worst [${worst}] got ${got[worst]}, want ${want[worst]}`,
    );
  }
}
