/**
 * Quantized matVec through the native build of the WASM kernels (build.ts: the same kernels.c,
 * compiled for this CPU, loaded through Deno's FFI). Each output equals the WASM kernels' bit
 * for bit (the same integer dots and f64 sums; matvec-native.test.ts). The weights are read
 * where they lie in their JS buffers, with no copy. Off where the library was not built for
 * this source and CPU (locate.ts), where FFI is not permitted, or with GROVE_NATIVE=0; the WASM
 * kernels then serve. GROVE_WASM_THREADS decides the threads as for WASM: a second one takes
 * half the rows of big products.
 */
import { GgmlType, type WeightType } from "../../ggml-type.ts";
import { activationFormFor, type Activations } from "../activations.ts";
import { nativeLibrary, nativeSourceKey } from "./locate.ts";

const SYMBOLS = {
  grove_kernel: { parameters: ["buffer"], result: "i32" },
  grove_threads_start: { parameters: [], result: "i32" },
  quantize_q8_0: { parameters: ["buffer", "i32", "buffer", "buffer", "buffer"], result: "void" },
  quantize_q8_k: { parameters: ["buffer", "i32", "buffer", "buffer", "buffer"], result: "void" },
  silu_mul_f32: { parameters: ["buffer", "buffer", "i32"], result: "void" },
  grove_round_f16: { parameters: ["buffer", "i32"], result: "void" },
  grove_run: {
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
    ],
    result: "void",
  },
} as const;

type Library = Deno.DynamicLibrary<typeof SYMBOLS>;
/** What a "buffer" parameter of the library takes. */
type Buffer = NonNullable<Parameters<Library["symbols"]["grove_run"]>[1]>;

/** Per type: the one-vector kernel, the grouped one (several vectors), block size and bytes. */
const KERNELS: Partial<
  Record<
    GgmlType,
    {
      one: string;
      grouped?: string;
      grouped8?: string; // the K-quants' built only for CPUs with AVX2 and F16C
      grouped16?: string; // built only for CPUs with AVX-512 VNNI
      block: number;
      bytes: number;
    }
  >
> = {
  [GgmlType.Q8_0]: { one: "matvec_q8_0", grouped: "matvec_q8_0_x4", block: 32, bytes: 34 },
  [GgmlType.Q4_0]: {
    one: "matvec_q4_0",
    grouped: "matvec_q4_0_x4",
    grouped8: "matvec_q4_0_x8",
    grouped16: "matvec_q4_0_x16",
    block: 32,
    bytes: 18,
  },
  [GgmlType.Q4_K]: {
    one: "matvec_q4_k",
    grouped: "matvec_q4_k_x4",
    grouped8: "matvec_q4_k_x8",
    grouped16: "matvec_q4_k_x16",
    block: 256,
    bytes: 144,
  },
  [GgmlType.Q5_K]: {
    one: "matvec_q5_k",
    grouped8: "matvec_q5_k_x8",
    grouped16: "matvec_q5_k_x16",
    block: 256,
    bytes: 176,
  },
  [GgmlType.Q6_K]: { one: "matvec_q6_k", grouped: "matvec_q6_k_x4", block: 256, bytes: 210 },
  [GgmlType.Q5_0]: { one: "matvec_q5_0", block: 32, bytes: 22 },
  [GgmlType.Q5_1]: { one: "matvec_q5_1", block: 32, bytes: 24 },
  [GgmlType.Q2_K]: { one: "matvec_q2_k", block: 256, bytes: 84 },
  [GgmlType.Q3_K]: { one: "matvec_q3_k", block: 256, bytes: 110 },
  [GgmlType.IQ4_NL]: { one: "matvec_iq4_nl", block: 32, bytes: 18 },
  [GgmlType.IQ4_XS]: { one: "matvec_iq4_xs", block: 256, bytes: 136 },
  [GgmlType.MXFP4]: { one: "matvec_mxfp4", block: 32, bytes: 17 },
};
// Products below this many weights x vectors stay on one thread.
const SPLIT_MIN = 1 << 20;
// An F32 product does f64 arithmetic on every weight where a quantized one streams packed
// bytes, so it pays for the second thread at smaller sizes (stories260K's 64 x 64 at 128 rows).
const SPLIT_MIN_F32 = 1 << 17;

interface Native {
  lib: Library;
  index: Map<string, number>;
  threads: boolean;
}

let native: Native | null | undefined;
let enabled = true;
let yd = new Float64Array(0),
  ys = new Int32Array(0),
  yq = new Int8Array(0),
  o = new Float32Array(0);

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Opens the library at `path` (default: the one built for these sources and this CPU). */
function open(path?: string | null): Native | null {
  if (env("GROVE_NATIVE") === "0") return null;
  const lib = path ?? nativeLibrary(nativeSourceKey());
  if (!lib) return null;
  try {
    Deno.statSync(lib);
  } catch {
    return null; // not built here: WASM serves
  }
  try {
    const l = Deno.dlopen(lib, SYMBOLS);
    const index = new Map<string, number>();
    // Kernels built for every CPU must be there; the x86 ones only where the CPU has them.
    const find = (name: string, required: boolean) => {
      const i = l.symbols.grove_kernel(new TextEncoder().encode(`${name}\0`));
      if (i >= 0) index.set(name, i);
      else if (required) throw new Error(`native kernels: ${name} missing`);
    };
    for (const k of Object.values(KERNELS)) {
      for (const name of [k.one, k.grouped, k.grouped8, k.grouped16]) {
        if (name) find(name, name === k.one || name === k.grouped || name === "matvec_q4_0_x8");
      }
    }
    for (const name of ["attn_rows_f16", "matmul_f32", ...VALUE_KERNELS]) find(name, true);
    const t = env("GROVE_WASM_THREADS");
    const want = t === "0" || t === "1" ? t === "1" : navigator.hardwareConcurrency >= 2;
    const threads = want && l.symbols.grove_threads_start() === 1;
    return { lib: l, index, threads };
  } catch {
    return null; // no FFI permission, or a library this process cannot load
  }
}

function runtime(): Native | null {
  if (native === undefined) native = open();
  return enabled ? native : null;
}

/** Whether the native kernels run (built for this source and CPU, and loaded). */
export function nativeKernels(): boolean {
  return runtime() !== null;
}

/** The loaded library's symbols (attention-native.ts), or null where the native kernels are off. */
export function nativeSymbols(): Library["symbols"] | null {
  return runtime()?.lib.symbols ?? null;
}

/**
 * Runs pool.c's entry `name` over `rows` rows, split across the two threads where they run
 * and `split` asks (attention-native.ts's rows); false where the native kernels are off.
 */
export function nativeRunRows(
  name: string,
  ctx: Uint8Array,
  rows: number,
  a: BigUint64Array,
  b: Float64Array,
  c: Int32Array,
  out: Float32Array,
  split: boolean,
): boolean {
  const rt = runtime();
  const k = rt?.index.get(name);
  if (!rt || k === undefined) return false;
  rt.lib.symbols.grove_run(k, ctx, rows, 0, 0, a, b, c, out, split && rt.threads ? 1 : 0);
  return true;
}

// pool.c's elementwise row kernels, and the values each of their rows holds (VALUES_PER_ROW).
const VALUE_KERNELS = ["silu_mul_rows", "quantize_q8_0_rows", "quantize_q8_k_rows"] as const;
const VALUES_PER_ROW = 1024;
// From this many values they are shared with the helper thread: eight decode streams' SwiGLU
// (45,056 values) and activation rounding ran on the caller alone while the helper waited for
// the next product, ~3 % of a step on the 1.1B. Below, handing half over saves about nothing.
const SPLIT_MIN_VALUES = 16384;

/**
 * pool.c's elementwise kernel `name` over `count` values, shared with the helper thread; false
 * (nothing run) where the native kernels are off, one thread runs them, or `count` is below
 * SPLIT_MIN_VALUES: the caller then calls the kernel itself.
 */
export function nativeRunValues(
  name: typeof VALUE_KERNELS[number],
  count: number,
  w: Buffer,
  a: Buffer | null,
  b: Buffer | null,
  c: Buffer | null,
  out: Float32Array | null,
): boolean {
  const rt = runtime();
  if (!rt || !rt.threads || count < SPLIT_MIN_VALUES) return false;
  const rows = Math.ceil(count / VALUES_PER_ROW);
  rt.lib.symbols.grove_run(rt.index.get(name)!, w, rows, count, 0, a, b, c, out, 1);
  return true;
}

/** Threads the native kernels split big products across (0 where they are off). */
export function nativeThreads(): number {
  const rt = runtime();
  return rt ? (rt.threads ? 2 : 1) : 0;
}

/** Turns the native kernels off or on; `path` loads that library instead (tests). */
export function setNativeKernels(on: boolean, path?: string): boolean {
  enabled = on;
  if (path !== undefined) native = open(path);
  return nativeKernels();
}

/**
 * quantizeActivations (activations.ts) for the q8_0 and q8_K forms, in C: the same levels,
 * scales and sums bit for bit (kernels.c). Null where the native kernels are off or the form
 * is another; the caller then rounds in TypeScript.
 */
export function quantizeNative(
  type: WeightType,
  x: Float32Array,
  cols: number,
  n: number,
  into: Activations,
): Activations | null {
  const rt = runtime();
  if (!rt) return null;
  const form = activationFormFor(type);
  if (form !== "q8_0" && form !== "q8_K") return null;
  const total = n * cols, block = form === "q8_0" ? 32 : 256;
  if (x.length < total || cols % block !== 0) return null; // the TypeScript path says why
  if (into.qs.length < total) into.qs = new Int8Array(total);
  if (into.d.length < total / block) into.d = new Float32Array(total / block);
  if (into.sums16.length < total / 16) into.sums16 = new Int32Array(total / 16);
  const q8_0 = form === "q8_0";
  const shared = q8_0 ? "quantize_q8_0_rows" : "quantize_q8_k_rows";
  if (!nativeRunValues(shared, total, x, into.qs, into.d, into.sums16, null)) {
    const fn = q8_0 ? rt.lib.symbols.quantize_q8_0 : rt.lib.symbols.quantize_q8_k;
    fn(x.subarray(0, total), total, into.qs, into.d, into.sums16);
  }
  into.form = form;
  into.n = n;
  into.cols = cols;
  return into;
}

// F32 products' inputs in matmul-f32.c's layout: groups of eight vectors, column by column.
let xf = new Float64Array(0);

/**
 * out[v * rows + r] = dot(row r, xs[v * cols ..]) for v < n, for F32 weights and unrounded
 * inputs: matVecBatchF32Activations's result bit for bit (matmul-f32.c), at the speed of native
 * vector code and split across the threads. False where the native kernels are off.
 */
export function matMulF32Native(
  weights: Uint8Array,
  rows: number,
  cols: number,
  xs: Float32Array,
  n: number,
  out: Float32Array,
): boolean {
  const rt = runtime();
  if (!rt) return false;
  const groups = Math.ceil(n / 8), size = groups * cols * 8;
  if (xf.length < size) xf = new Float64Array(size);
  for (let v = 0; v < groups * 8; v++) {
    const base = (v >> 3) * cols * 8 + (v & 7);
    for (let j = 0, i = v * cols; j < cols; j++) xf[base + j * 8] = v < n ? xs[i + j] : 0;
  }
  const split = rt.threads && rows * cols * n >= SPLIT_MIN_F32 ? 1 : 0;
  const w = weights.subarray(0, rows * cols * 4);
  rt.lib.symbols.grove_run(rt.index.get("matmul_f32")!, w, rows, cols, n, yq, xf, ys, out, split);
  return true;
}

function grow(n: number) {
  if (yd.length < n) yd = new Float64Array(n);
}

// Which activations the grouped layout in yq, yd and ys was built from (type decides the
// offsets, lanes the interleave): a product of the same rounded input reuses it.
let laidOut: { a: Activations; type: GgmlType; lanes: number; n: number; cols: number } | null =
  null;

/**
 * out[v * rows + r] = dot(row r, vector v) for the `a.n` rounded vectors, as matVecWasm
 * computes it; false where the native kernels are off or lack this type (nothing written).
 */
export function matVecNative(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
  sameInput = false,
): boolean {
  const rt = runtime();
  const k = KERNELS[type];
  if (!rt || !k) return false;
  const n = a.n, nb = cols / k.block, g16 = cols / 16;
  const w = weights.subarray(0, rows * nb * k.bytes);
  const split = rt.threads && rows * cols * n >= SPLIT_MIN ? 1 : 0;
  // Sixteen vectors per group (512-bit registers) from sixteen on, eight (256-bit) from eight
  // on, where the type and this CPU have such a kernel.
  const k16 = k.grouped16 ? rt.index.get(k.grouped16) : undefined;
  if (k16 !== undefined && n >= 16) {
    return grouped(rt, k16, type, w, rows, cols, nb, a, out, split, 16, sameInput);
  }
  const k8 = k.grouped8 ? rt.index.get(k.grouped8) : undefined;
  if (k8 !== undefined && n >= 8) {
    return grouped(rt, k8, type, w, rows, cols, nb, a, out, split, 8, sameInput);
  }
  if (k.grouped && n >= 2) {
    const k4 = rt.index.get(k.grouped)!;
    return grouped(rt, k4, type, w, rows, cols, nb, a, out, split, 4, sameInput);
  }
  laidOut = null; // yd and ys now hold this product's one-vector form
  grow(n * nb);
  for (let i = 0; i < n * nb; i++) yd[i] = a.d[i];
  if (ys.length < n * g16) ys = new Int32Array(n * g16);
  const s16 = a.sums16;
  if (type === GgmlType.Q4_0 || type === GgmlType.Q5_0) {
    const m = type === GgmlType.Q4_0 ? 8 : 16;
    for (let v = 0; v < n; v++) {
      for (let b = 0; b < nb; b++) {
        ys[v * g16 + b] = m * (s16[v * g16 + 2 * b] + s16[v * g16 + 2 * b + 1]);
      }
    }
  } else if (type === GgmlType.Q5_1) {
    // Each block's Q8_1 `s` as f64, in the room of cols / 16 i32 per vector.
    new Float64Array(ys.buffer, 0, n * nb).set(a.s.subarray(0, n * nb));
  } else ys.set(s16.subarray(0, n * g16));
  const qs = a.qs.subarray(0, n * cols);
  rt.lib.symbols.grove_run(rt.index.get(k.one)!, w, rows, cols, n, qs, yd, ys, out, split);
  return true;
}

/**
 * A grouped kernel's product (groups of `lanes` vectors: 4, or 8 for the Q4_0, Q4_K and Q5_K
 * _x8 kernels, or 16 for their _x16 ones), its input laid out anew unless the last product laid
 * out the same.
 */
function grouped(
  rt: Native,
  kernel: number,
  type: GgmlType,
  w: Uint8Array,
  rows: number,
  cols: number,
  nb: number,
  a: Activations,
  out: Float32Array,
  split: number,
  lanes: 4 | 8 | 16,
  sameInput: boolean,
): boolean {
  const n = a.n, groups = Math.ceil(n / lanes), np = lanes * groups;
  const l = laidOut;
  const reuse = sameInput && l !== null && l.a === a && l.type === type && l.lanes === lanes &&
    l.n === n && l.cols === cols;
  if (!reuse) layOut(type, cols, nb, a, lanes);
  laidOut = { a, type, lanes, n, cols };
  // Padding vectors' outputs need room past the caller's n * rows.
  const direct = out.length >= np * rows;
  if (!direct && o.length < np * rows) o = new Float32Array(np * rows);
  const dst = direct ? out : o;
  rt.lib.symbols.grove_run(kernel, w, rows, cols, groups, yq, yd, ys, dst, split);
  if (!direct) out.set(o.subarray(0, n * rows));
  return true;
}

/**
 * Fills yq, yd and ys with `a` in the grouped kernels' layout for groups of `lanes`, as
 * matVecGrouped (../wasm/matvec-wasm.ts) builds it.
 */
function layOut(type: GgmlType, cols: number, nb: number, a: Activations, lanes: number): void {
  const n = a.n, groups = Math.ceil(n / lanes), np = lanes * groups, g16 = cols / 16;
  const auxPer = type === GgmlType.Q4_0 ? nb : type === GgmlType.Q8_0 ? 0 : g16;
  grow(np * nb);
  if (ys.length < Math.max(np * auxPer, 4)) ys = new Int32Array(np * auxPer);
  const s16 = a.sums16;
  for (let v = 0; v < np; v++) {
    const g = Math.floor(v / lanes), l = v % lanes;
    const at = g * lanes * nb + l;
    for (let b = 0; b < nb; b++) yd[at + lanes * b] = v < n ? a.d[v * nb + b] : 0;
    const ax = g * lanes * auxPer + l;
    if (type === GgmlType.Q4_0) {
      for (let b = 0; b < nb; b++) {
        ys[ax + lanes * b] = v < n ? -8 * (s16[v * g16 + 2 * b] + s16[v * g16 + 2 * b + 1]) : 0;
      }
    } else if (auxPer > 0) {
      for (let j = 0; j < g16; j++) ys[ax + lanes * j] = v < n ? s16[v * g16 + j] : 0;
    }
  }
  // Levels interleaved by 4-byte chunk within each group: [g][chunk][vector].
  if (yq.length < np * cols) yq = new Int8Array(np * cols);
  const qs = a.qs.byteOffset % 4 === 0 ? a.qs : a.qs.slice(0, n * cols);
  const src = new Int32Array(qs.buffer, qs.byteOffset, (n * cols) >> 2);
  const yT = new Int32Array(yq.buffer, 0, (np * cols) >> 2);
  const chunks = cols >> 2;
  for (let v = 0; v < np; v++) {
    const at = Math.floor(v / lanes) * lanes * chunks + (v % lanes);
    if (v >= n) {
      for (let c = 0; c < chunks; c++) yT[at + lanes * c] = 0;
    } else {
      for (let c = 0, s = v * chunks; c < chunks; c++) yT[at + lanes * c] = src[s + c];
    }
  }
}
