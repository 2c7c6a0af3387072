/**
 * Quantized matVec through the WASM SIMD kernels (kernels.c). A loader reads
 * weights straight into the module's memory (`wasmWeightBytes`), so a model
 * is held once and the kernels read it in place; weights that arrive in JS
 * buffers instead are copied in on first use and kept there, keyed by their
 * bytes' (buffer, offset, length), the copy freed when the source buffer is
 * garbage-collected (such a model costs its bytes twice). All loaded models
 * share one 4 GiB wasm32 address space: a matrix that does not fit is left to
 * the TypeScript kernels (`matVecWasm` returns false).
 * Where there are two cores (unless GROVE_WASM_THREADS=0) a second thread shares
 * that memory and takes half the rows of big products (threads.ts).
 */
import { blockGeometry, GgmlType, type QuantWeightType, type WeightType } from "../../ggml-type.ts";
import { activationFormFor, type Activations } from "../activations.ts";
import { alloc, createHeap, type Heap, release } from "./heap.ts";
import {
  KERNELS_RELAXED_BASE64,
  KERNELS_SHARED_BASE64,
  KERNELS_SIMD_BASE64,
} from "./kernels-wasm.ts";
import { type Pool, poolReady, runSplit, startPool, stopPool } from "./threads.ts";

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
  /** The exports, by index in KERNELS. */
  fns: Kernel[];
  /** A second thread on the same (shared) memory, when turned on. */
  pool: Pool | null;
  /**
   * Starts that thread, until the first product big enough to split asks for it: a node whose
   * products all run in the native kernels never pays for the Worker (~17 MiB resident).
   */
  startPool: (() => Pool | null) | null;
  /** Activation and output scratch, regrown when a product needs more. */
  scratch: { ptr: number; bytes: number };
  /** Weights copied in, by source buffer, then `${byteOffset}:${bytes}`. */
  placed: WeakMap<ArrayBufferLike, Map<string, Placed>>;
  /** This memory's buffers (a shared memory gives a new one per growth) that weights were read into. */
  own: WeakSet<ArrayBufferLike>;
  /** Weight bytes held now: read in place, and copied in from JS buffers. */
  held: { inPlace: number; copied: number };
}

/** "relaxed": SIMD128 + relaxed SIMD's integer dot; "simd": SIMD128 only. */
export type KernelVariant = "relaxed" | "simd";

/** The kernels.c export of each block-quantized type (a type without one uses the TS kernels). */
const TYPE_KERNELS: Partial<Record<QuantWeightType, string>> = {
  [GgmlType.Q8_0]: "matvec_q8_0",
  [GgmlType.Q4_0]: "matvec_q4_0",
  [GgmlType.Q4_K]: "matvec_q4_k",
  [GgmlType.Q5_K]: "matvec_q5_k",
  [GgmlType.Q6_K]: "matvec_q6_k",
  [GgmlType.Q5_0]: "matvec_q5_0",
  [GgmlType.Q5_1]: "matvec_q5_1",
  [GgmlType.Q2_K]: "matvec_q2_k",
  [GgmlType.Q3_K]: "matvec_q3_k",
  [GgmlType.IQ4_NL]: "matvec_iq4_nl",
  [GgmlType.IQ4_XS]: "matvec_iq4_xs",
  [GgmlType.MXFP4]: "matvec_mxfp4",
};
/**
 * The kernels for several vectors at once (prefill, batched decode): each weight block is read
 * and split once per eight vectors (kernels.c, MATMAT).
 */
const GROUPED_KERNELS: Partial<Record<QuantWeightType, string>> = {
  [GgmlType.Q4_0]: "matvec_q4_0_x4",
  [GgmlType.Q8_0]: "matvec_q8_0_x4",
  [GgmlType.Q4_K]: "matvec_q4_k_x4",
  [GgmlType.Q6_K]: "matvec_q6_k_x4",
};
/** Every export the runtime calls, by index. */
const KERNELS = [
  ...Object.values(TYPE_KERNELS),
  ...Object.values(GROUPED_KERNELS),
  "quantize_q8_0",
  "quantize_q8_k",
];
const QUANTIZE = { q8_0: KERNELS.indexOf("quantize_q8_0"), q8_K: KERNELS.indexOf("quantize_q8_k") };
const GROUPED_OF = new Map(
  Object.entries(GROUPED_KERNELS).map(([code, name]) => [Number(code), KERNELS.indexOf(name)]),
);
/** Below this many vectors the one-vector kernels serve (a group of four pads with zero ones). */
const GROUPED_MIN_N = 2;
/** Per type with a kernel: its index in KERNELS and its block geometry. */
const KERNEL_OF = new Map(
  Object.entries(TYPE_KERNELS).map(([code, name]) => {
    const type = Number(code) as GgmlType;
    const { typeSize, blockSize } = blockGeometry(type)!;
    return [type, { kernel: KERNELS.indexOf(name), blockBytes: typeSize, block: blockSize }];
  }),
);
/** Types whose kernels read no activation sums. */
const NO_SUMS = new Set<GgmlType>([
  GgmlType.Q8_0,
  GgmlType.IQ4_NL,
  GgmlType.IQ4_XS,
  GgmlType.MXFP4,
]);
// Products below this many weights x vectors stay on one thread: the hand-off
// costs a few microseconds.
const SPLIT_MIN = 1 << 20;

let runtime: Runtime | null | undefined;
let enabled = true;
// Frees a source buffer's copies once the buffer itself is collected.
const freed = new FinalizationRegistry<{ rt: Runtime; entries: Map<string, Placed> }>(
  ({ rt, entries }) => {
    for (const p of entries.values()) {
      if (p.ptr < 0) continue;
      release(rt.heap, p.ptr, p.bytes);
      rt.held.copied -= p.bytes;
    }
  },
);
// Frees weights read in place once their view is collected (the weights hold the view; the
// per-expert subarrays of a stack are made from it and kept beside it, moe.ts).
const freedInPlace = new FinalizationRegistry<{ rt: Runtime; ptr: number; bytes: number }>(
  ({ rt, ptr, bytes }) => {
    release(rt.heap, ptr, bytes);
    rt.held.inPlace -= bytes;
  },
);

function decode(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/**
 * The relaxed-SIMD build where the engine validates it (or as asked), else
 * plain SIMD128; with `threads`, the relaxed build on a shared memory and a
 * worker thread (one thread where that fails).
 */
function instantiate(want?: KernelVariant, threads = false): Runtime | null {
  try {
    const relaxed = decode(KERNELS_RELAXED_BASE64);
    const variant = want ?? (WebAssembly.validate(relaxed) ? "relaxed" : "simd");
    if (variant === "relaxed") {
      // Shared even on one thread: growing an unshared memory detaches its buffer, and with it
      // the views of weights read into it (wasmWeightBytes).
      const rt = instantiateShared(threads);
      if (rt) return rt;
    }
    const bytes = variant === "relaxed" ? relaxed : decode(KERNELS_SIMD_BASE64);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    const ex = instance.exports as Record<string, unknown>;
    return runtimeOf(variant, ex, ex.memory as WebAssembly.Memory, null);
  } catch {
    return null; // no WebAssembly or no SIMD128 here: the TypeScript kernels serve
  }
}

function instantiateShared(threads: boolean): Runtime | null {
  try {
    const module = new WebAssembly.Module(decode(KERNELS_SHARED_BASE64));
    const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const rt = runtimeOf("relaxed", instance.exports as Record<string, unknown>, memory, null);
    if (threads) rt.startPool = () => startPool(module, memory, rt.heap, KERNELS);
    return rt;
  } catch {
    return null; // no shared memory or atomics in this engine
  }
}

function runtimeOf(
  variant: KernelVariant,
  ex: Record<string, unknown>,
  memory: WebAssembly.Memory,
  pool: Pool | null,
): Runtime {
  const base = (ex.__heap_base as WebAssembly.Global).value as number;
  return {
    variant,
    heap: createHeap(memory, base),
    fns: KERNELS.map((name) => ex[name] as Kernel),
    pool,
    startPool: null,
    scratch: { ptr: -1, bytes: 0 },
    placed: new WeakMap(),
    own: new WeakSet(),
    held: { inPlace: 0, copied: 0 },
  };
}

/**
 * Two threads where the machine has two cores or more (measured on the 1.1B Q4_0 model: decode
 * 22 → 33 tok/s on an idle machine, 4 % slower when another process holds the second core);
 * GROVE_WASM_THREADS=0 keeps one, =1 asks for two anyway.
 */
function threadsFromEnv(): boolean {
  let env: string | undefined;
  try {
    env = Deno.env.get("GROVE_WASM_THREADS");
  } catch {
    env = undefined; // no env permission: decide by the core count
  }
  if (env === "0" || env === "1") return env === "1";
  return navigator.hardwareConcurrency >= 2;
}

/** Starts the runtime's second thread if it is wanted and not started yet. */
function startThread(rt: Runtime): void {
  if (!rt.startPool) return;
  rt.pool = rt.startPool();
  rt.startPool = null;
}

/** Runs kernel `k` over all rows, split across the two threads where it pays. */
function call(rt: Runtime, k: number, args: number[]): void {
  const fn = rt.fns[k];
  const run = (r0: number, r1: number) =>
    fn(args[0], args[1], args[2], args[3], r0, r1, args[6], args[7], args[8], args[9]);
  const big = args[1] * args[2] * args[3] >= SPLIT_MIN;
  // Ready within milliseconds: till then runSplit runs all rows here.
  if (big) startThread(rt);
  if (rt.pool && big) runSplit(rt.pool, k, args, run);
  else run(0, args[1]);
}

/**
 * Runs the kernels on two threads (a Worker sharing the weights' memory) or
 * back on one (the default: two where there are two cores; see threadsFromEnv). Switching starts a fresh instance: weights
 * are copied again on next use. Resolves to whether two threads now run
 * (false where Workers, shared memory or relaxed SIMD are missing).
 */
export async function setWasmThreads(on: boolean): Promise<boolean> {
  if (runtime === undefined) runtime = instantiate(undefined, threadsFromEnv());
  const threaded = !!(runtime?.pool || runtime?.startPool);
  if (threaded !== on) {
    if (runtime?.pool) stopPool(runtime.pool);
    runtime = instantiate(undefined, on);
  }
  // Asked for by name: the thread starts now, not at the first big product.
  if (runtime) startThread(runtime);
  return runtime?.pool ? await poolReady(runtime.pool) : false;
}

/**
 * Turns the WASM kernels off (or back on), e.g. to compare with the
 * TypeScript ones; `variant` forces a build (a fresh instance, weights
 * copied again on next use), for tests of the plain-SIMD fallback.
 */
export function setWasmKernels(on: boolean, variant?: KernelVariant): void {
  enabled = on;
  if (variant && runtime?.variant !== variant) {
    if (runtime?.pool) stopPool(runtime.pool);
    runtime = instantiate(variant);
  }
}

/** Which build runs, or null where WebAssembly SIMD is missing. */
export function wasmKernelVariant(): KernelVariant | null {
  if (runtime === undefined) runtime = instantiate(undefined, threadsFromEnv());
  return runtime?.variant ?? null;
}

/** Threads the kernels split big products across: 2 with the worker pool, else 1. */
export function wasmThreads(): number {
  if (runtime === undefined) runtime = instantiate(undefined, threadsFromEnv());
  return runtime?.pool || runtime?.startPool ? 2 : 1;
}

/** Whether matVecWasm can take `type` in this runtime. */
export function hasWasmKernel(type: GgmlType): boolean {
  if (!enabled) return false;
  if (runtime === undefined) runtime = instantiate(undefined, threadsFromEnv());
  return runtime !== null && KERNEL_OF.has(type);
}

/**
 * `bytes` bytes in the kernels' memory for a weight tensor of `type`, for a loader to read into:
 * the kernels then read them where they are, with no second copy. Null where no kernel takes
 * the type, the memory is not shared (growing it would detach the view) or has no room.
 */
export function wasmWeightBytes(type: GgmlType, bytes: number): Uint8Array | null {
  if (!hasWasmKernel(type)) return null;
  const rt = runtime!;
  if (!(rt.heap.memory.buffer instanceof SharedArrayBuffer)) return null;
  const ptr = alloc(rt.heap, bytes);
  if (ptr < 0) return null;
  const view = new Uint8Array(rt.heap.memory.buffer, ptr, bytes);
  rt.own.add(view.buffer);
  rt.held.inPlace += bytes;
  freedInPlace.register(view, { rt, ptr, bytes });
  return view;
}

/**
 * Weight bytes the kernels' memory holds now: read there in place by a loader, and copied in
 * from JS buffers (each such byte is held twice, once in its JS buffer).
 */
export function wasmWeightsHeld(): { inPlace: number; copied: number } {
  return { ...(runtime?.held ?? { inPlace: 0, copied: 0 }) };
}

/** The weights' address in WASM memory, copying them there on first use; -1 if they do not fit. */
function place(rt: Runtime, weights: Uint8Array, bytes: number): number {
  if (rt.own.has(weights.buffer)) return weights.byteOffset;
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
  rt.held.copied += bytes;
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
 * quantizeActivations (../activations.ts) for the q8_0 and q8_K forms in the module
 * (kernels.c): the same levels, scales and sums bit for bit (but a NaN scale's sign), several
 * times faster. Null where the kernels are off or the form is another.
 */
export function quantizeWasm(
  type: WeightType,
  x: Float32Array,
  cols: number,
  n: number,
  into: Activations,
): Activations | null {
  if (!enabled) return null;
  if (runtime === undefined) runtime = instantiate(undefined, threadsFromEnv());
  const rt = runtime;
  const form = activationFormFor(type);
  if (!rt || (form !== "q8_0" && form !== "q8_K")) return null;
  const total = n * cols, block = form === "q8_0" ? 32 : 256;
  if (x.length < total || cols % block !== 0) return null; // the TypeScript path says why
  // Scratch layout: x (f32) | d (f32) | sums16 (i32) | qs (i8).
  const dAt = total * 4, sAt = dAt + Math.ceil(total / block) * 4, qAt = sAt + (total / 16) * 4;
  const base = scratch(rt, qAt + total);
  if (base < 0) return null;
  const buf = rt.heap.memory.buffer;
  new Float32Array(buf, base, total).set(x.subarray(0, total));
  const quantize = rt.fns[QUANTIZE[form]] as unknown as (...args: number[]) => void;
  quantize(base, total, base + qAt, base + dAt, base + sAt);
  if (into.qs.length < total) into.qs = new Int8Array(total);
  if (into.d.length < total / block) into.d = new Float32Array(total / block);
  if (into.sums16.length < total / 16) into.sums16 = new Int32Array(total / 16);
  into.qs.set(new Int8Array(buf, base + qAt, total));
  into.d.set(new Float32Array(buf, base + dAt, total / block));
  into.sums16.set(new Int32Array(buf, base + sAt, total / 16));
  into.form = form;
  into.n = n;
  into.cols = cols;
  return into;
}

/**
 * out[v * rows + r] = dot(row r, vector v) for the `a.n` rounded activation
 * vectors in `a`, exactly as the references in tests/support/quant/ compute it. False when
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
  const { kernel, blockBytes, block } = KERNEL_OF.get(type)!;
  const nb = cols / block;
  const n = a.n;
  const w = place(rt, weights, rows * nb * blockBytes);
  if (w < 0) return false;
  const grouped = GROUPED_OF.get(type);
  if (grouped !== undefined && n >= GROUPED_MIN_N) {
    return matVecGrouped(rt, grouped, type, w, rows, cols, a, out);
  }
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
  if (type === GgmlType.Q4_0 || type === GgmlType.Q5_0) {
    // Their kernels take the -8 / -16 offset off whole blocks: 8 or 16 * (sum of 32 levels).
    const g = cols / 16, s16 = a.sums16, k = type === GgmlType.Q4_0 ? 8 : 16;
    for (let v = 0; v < n; v++) {
      for (let b = 0; b < nb; b++) {
        sums[v * g + b] = k * (s16[v * g + 2 * b] + s16[v * g + 2 * b + 1]);
      }
    }
  } else if (type === GgmlType.Q5_1) {
    // Each block's Q8_1 `s`, as f64: cols / 16 i32 per vector is room for nb f64.
    const s = new Float64Array(buf, ys, n * nb);
    for (let i = 0; i < n * nb; i++) s[i] = a.s[i];
  } else if (!NO_SUMS.has(type)) sums.set(a.sums16.subarray(0, (n * cols) / 16));
  new Int8Array(buf, yq, n * cols).set(a.qs.subarray(0, n * cols));
  call(rt, kernel, [w, rows, cols, n, 0, rows, yq, yd, ys, o]);
  out.set(new Float32Array(buf, o, n * rows));
  return true;
}

/**
 * Several vectors through a grouped kernel, which reads each weight block once for up to eight
 * of them: the vectors are padded with zero ones to groups of four, their levels interleaved by
 * 4-byte chunk, and their scales and sums transposed, per group, as the kernel wants: Q4_0 the
 * negated -8 offsets of each block ([block][4]), the K-quants the sums of each 16 levels
 * ([block][16][4]), Q8_0 none.
 */
function matVecGrouped(
  rt: Runtime,
  kernel: number,
  type: GgmlType,
  w: number,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): boolean {
  const n = a.n, n4 = Math.ceil(n / 4), np = 4 * n4;
  const nb = cols / (type === GgmlType.Q4_0 || type === GgmlType.Q8_0 ? 32 : 256);
  const g16 = cols / 16;
  const auxPer = type === GgmlType.Q4_0 ? nb : type === GgmlType.Q8_0 ? 0 : g16;
  // Scratch layout: ydT (f64) | aux (i32) | out (f32) | yq (i8), each 16-aligned.
  const ydBytes = np * nb * 8;
  const auxBytes = Math.ceil((np * auxPer * 4) / 16) * 16;
  const outBytes = Math.ceil((np * rows * 4) / 16) * 16;
  const base = scratch(rt, ydBytes + auxBytes + outBytes + np * cols);
  if (base < 0) return false;
  const yd = base, aux = yd + ydBytes, o = aux + auxBytes, yq = o + outBytes;
  // One pass over the n * nb blocks: the copies cost little next to the product.
  const buf = rt.heap.memory.buffer;
  const dT = new Float64Array(buf, yd, np * nb);
  const auxT = new Int32Array(buf, aux, np * auxPer);
  const s16 = a.sums16;
  for (let v = 0; v < np; v++) {
    const at = (v >> 2) * 4 * nb + (v & 3);
    for (let b = 0; b < nb; b++) dT[at + 4 * b] = v < n ? a.d[v * nb + b] : 0;
    const ax = (v >> 2) * 4 * auxPer + (v & 3);
    if (type === GgmlType.Q4_0) {
      for (let b = 0; b < nb; b++) {
        auxT[ax + 4 * b] = v < n ? -8 * (s16[v * g16 + 2 * b] + s16[v * g16 + 2 * b + 1]) : 0;
      }
    } else if (auxPer > 0) {
      for (let j = 0; j < g16; j++) auxT[ax + 4 * j] = v < n ? s16[v * g16 + j] : 0;
    }
  }
  // Levels interleaved by 4-byte chunk within each group: [g][chunk][vector].
  const qs = a.qs.byteOffset % 4 === 0 ? a.qs : a.qs.slice(0, n * cols);
  const src = new Int32Array(qs.buffer, qs.byteOffset, (n * cols) >> 2);
  const yT = new Int32Array(buf, yq, (np * cols) >> 2);
  const chunks = cols >> 2;
  for (let v = 0; v < np; v++) {
    const at = (v >> 2) * 4 * chunks + (v & 3);
    if (v >= n) {
      for (let c = 0; c < chunks; c++) yT[at + 4 * c] = 0;
    } else {
      for (let c = 0, s = v * chunks; c < chunks; c++) yT[at + 4 * c] = src[s + c];
    }
  }
  call(rt, kernel, [w, rows, cols, n4, 0, rows, yq, yd, aux, o]);
  out.set(new Float32Array(buf, o, n * rows));
  return true;
}
