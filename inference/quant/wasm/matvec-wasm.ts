/**
 * Quantized matVec through the WASM SIMD kernels (kernels.c). Weights are
 * copied into the module's memory on first use and kept there, keyed by
 * their bytes' (buffer, offset, length), so decode reads them in place every
 * token; the copy is freed when the source buffer is garbage-collected.
 * A model therefore costs its weight bytes twice in RAM (JS + WASM), and all
 * loaded models share one 4 GiB wasm32 address space: a matrix that does not
 * fit is left to the TypeScript kernels (`matVecWasm` returns false).
 */
import { GgmlType } from "../../ggml-type.ts";
import type { Activations } from "../activations.ts";
import { alloc, createHeap, type Heap, release } from "./heap.ts";
import { KERNELS_RELAXED_BASE64, KERNELS_SIMD_BASE64 } from "./kernels-wasm.ts";

type Kernel = (
  w: number,
  rows: number,
  cols: number,
  n: number,
  r0: number,
  r1: number,
  yq: number,
  yd: number,
  ys: number,
  out: number,
) => void;

interface Placed {
  ptr: number;
  bytes: number;
}

interface Runtime {
  variant: KernelVariant;
  heap: Heap;
  kernels: Map<GgmlType, { kernel: Kernel; blockBytes: number; block: number }>;
  /** Activation and output scratch, regrown when a product needs more. */
  scratch: { ptr: number; bytes: number };
  /** Weights copied in, by source buffer, then `${byteOffset}:${bytes}`. */
  placed: WeakMap<ArrayBufferLike, Map<string, Placed>>;
}

/** "relaxed": SIMD128 + relaxed SIMD's integer dot; "simd": SIMD128 only. */
export type KernelVariant = "relaxed" | "simd";

let runtime: Runtime | null | undefined;
let enabled = true;
// Frees a source buffer's copies once the buffer itself is collected.
const freed = new FinalizationRegistry<{ rt: Runtime; entries: Map<string, Placed> }>(
  ({ rt, entries }) => {
    for (const p of entries.values()) if (p.ptr >= 0) release(rt.heap, p.ptr, p.bytes);
  },
);

function decode(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** The relaxed-SIMD build where the engine validates it (or as asked), else plain SIMD128. */
function instantiate(want?: KernelVariant): Runtime | null {
  try {
    const relaxed = decode(KERNELS_RELAXED_BASE64);
    const variant = want ?? (WebAssembly.validate(relaxed) ? "relaxed" : "simd");
    const bytes = variant === "relaxed" ? relaxed : decode(KERNELS_SIMD_BASE64);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    const ex = instance.exports as Record<string, unknown>;
    const memory = ex.memory as WebAssembly.Memory;
    const base = (ex.__heap_base as WebAssembly.Global).value as number;
    const k = (name: string) => ex[name] as Kernel;
    return {
      variant,
      heap: createHeap(memory, base),
      kernels: new Map([
        [GgmlType.Q8_0, { kernel: k("matvec_q8_0"), blockBytes: 34, block: 32 }],
        [GgmlType.Q4_0, { kernel: k("matvec_q4_0"), blockBytes: 18, block: 32 }],
        [GgmlType.Q4_K, { kernel: k("matvec_q4_k"), blockBytes: 144, block: 256 }],
        [GgmlType.Q5_K, { kernel: k("matvec_q5_k"), blockBytes: 176, block: 256 }],
        [GgmlType.Q6_K, { kernel: k("matvec_q6_k"), blockBytes: 210, block: 256 }],
      ]),
      scratch: { ptr: -1, bytes: 0 },
      placed: new WeakMap(),
    };
  } catch {
    return null; // no WebAssembly or no SIMD128 here: the TypeScript kernels serve
  }
}

/**
 * Turns the WASM kernels off (or back on), e.g. to compare with the
 * TypeScript ones; `variant` forces a build (a fresh instance, weights
 * copied again on next use), for tests of the plain-SIMD fallback.
 */
export function setWasmKernels(on: boolean, variant?: KernelVariant): void {
  enabled = on;
  if (variant && runtime?.variant !== variant) runtime = instantiate(variant);
}

/** Which build runs, or null where WebAssembly SIMD is missing. */
export function wasmKernelVariant(): KernelVariant | null {
  if (runtime === undefined) runtime = instantiate();
  return runtime?.variant ?? null;
}

/** Whether matVecWasm can take `type` in this runtime. */
export function hasWasmKernel(type: GgmlType): boolean {
  if (!enabled) return false;
  if (runtime === undefined) runtime = instantiate();
  return runtime !== null && runtime.kernels.has(type);
}

/** The weights' address in WASM memory, copying them there on first use; -1 if they do not fit. */
function place(rt: Runtime, weights: Uint8Array, bytes: number): number {
  let entries = rt.placed.get(weights.buffer);
  if (!entries) {
    entries = new Map();
    rt.placed.set(weights.buffer, entries);
    freed.register(weights.buffer, { rt, entries });
  }
  const key = `${weights.byteOffset}:${bytes}`;
  const hit = entries.get(key);
  if (hit) return hit.ptr;
  const ptr = alloc(rt.heap, bytes);
  if (ptr < 0) {
    entries.set(key, { ptr: -1, bytes: 0 }); // no room: this matrix stays on the TS kernels
    return -1;
  }
  new Uint8Array(rt.heap.memory.buffer, ptr, bytes).set(weights.subarray(0, bytes));
  entries.set(key, { ptr, bytes });
  return ptr;
}

function scratch(rt: Runtime, bytes: number): number {
  const s = rt.scratch;
  if (s.bytes >= bytes) return s.ptr;
  if (s.ptr >= 0) release(rt.heap, s.ptr, s.bytes);
  s.ptr = alloc(rt.heap, bytes);
  s.bytes = s.ptr < 0 ? 0 : bytes;
  return s.ptr;
}

/**
 * out[v * rows + r] = dot(row r, vector v) for the `a.n` rounded activation
 * vectors in `a`, exactly as dot-q-0.ts / dot-k.ts compute it. False when
 * this type has no WASM kernel or memory ran out; then nothing was written.
 * The weights must not change after their first product (they are cached).
 */
export function matVecWasm(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): boolean {
  if (!hasWasmKernel(type)) return false;
  const rt = runtime!;
  const { kernel, blockBytes, block } = rt.kernels.get(type)!;
  const nb = cols / block;
  const n = a.n;
  const w = place(rt, weights, rows * nb * blockBytes);
  if (w < 0) return false;
  // Scratch layout: yd (f64) | ys (i32) | out (f32) | yq (i8), each 16-aligned.
  const ydBytes = n * nb * 8;
  const ysBytes = Math.ceil((n * cols) / 16 * 4 / 16) * 16;
  const outBytes = Math.ceil((n * rows * 4) / 16) * 16;
  const base = scratch(rt, ydBytes + ysBytes + outBytes + n * cols);
  if (base < 0) return false;
  const yd = base, ys = yd + ydBytes, o = ys + ysBytes, yq = o + outBytes;
  const buf = rt.heap.memory.buffer;
  const dv = new Float64Array(buf, yd, n * nb);
  for (let i = 0; i < n * nb; i++) dv[i] = a.d[i];
  const sums = new Int32Array(buf, ys, (n * cols) / 16);
  if (type === GgmlType.Q4_0) {
    // Its kernel takes the -8 offset off whole blocks: 8 * (sum of 32 levels), per vector.
    const g = cols / 16, s16 = a.sums16;
    for (let v = 0; v < n; v++) {
      for (let b = 0; b < nb; b++) {
        sums[v * g + b] = 8 * (s16[v * g + 2 * b] + s16[v * g + 2 * b + 1]);
      }
    }
  } else sums.set(a.sums16.subarray(0, (n * cols) / 16));
  new Int8Array(buf, yq, n * cols).set(a.qs.subarray(0, n * cols));
  kernel(w, rows, cols, n, 0, rows, yq, yd, ys, o);
  out.set(new Float32Array(buf, o, n * rows));
  return true;
}
