/**
 * A second thread for the WASM kernels: one Worker (matvec-worker.ts) runs
 * the shared-memory build on the same WebAssembly.Memory, so it reads the
 * weights where the main thread placed them. A product is split by rows;
 * the two halves are computed by the same code on disjoint rows, so the
 * outputs equal the one-thread ones bit for bit. Jobs pass through a small
 * control block in that memory (Atomics.wait / notify), not messages, since
 * decode runs over a hundred products per token.
 */
import { Worker } from "node:worker_threads";
import { alloc, type Heap } from "./heap.ts";

/** Int32 slots of the control block. */
export const CTL = {
  /** Job counter, bumped by the main thread per job; -1 asks the worker to stop. */
  job: 0,
  /** The last job the worker finished. */
  done: 1,
  /** 1 once the worker has instantiated the module; -1 once a job threw there. */
  ready: 2,
  /** Index of the kernel to run, in the list given at start. */
  kernel: 3,
  /** Its ten arguments (w, rows, cols, n, r0, r1, yq, yd, ys, out). */
  args: 4,
  size: 16,
} as const;

const STACK_BYTES = 64 * 1024;
// Spins before sleeping on the done flag: the other half usually ends within
// microseconds of ours, and a futex wake-up costs more than that.
const SPINS = 20000;
// A half that has not come back after this long means a dead worker: its
// rows are computed here and the pool is not used again.
const DEAD_MS = 10_000;

export interface Pool {
  worker: Worker;
  ctl: Int32Array;
  job: number;
  /** False once the worker failed: every row then runs on the calling thread. */
  alive: boolean;
}

/** Starts the worker; null where Workers or shared memory are unavailable. */
export function startPool(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  heap: Heap,
  kernels: string[],
): Pool | null {
  if (typeof SharedArrayBuffer === "undefined") return null;
  const ctlPtr = alloc(heap, CTL.size * 4);
  const stack = alloc(heap, STACK_BYTES);
  if (ctlPtr < 0 || stack < 0) return null;
  const ctl = new Int32Array(memory.buffer, ctlPtr, CTL.size);
  ctl.fill(0);
  let worker: Worker;
  try {
    // node:worker_threads, for unref(): an idle helper must not keep the process alive.
    const workerData = { module, memory, ctl: ctlPtr / 4, stackTop: stack + STACK_BYTES, kernels };
    worker = new Worker(new URL("./matvec-worker.ts", import.meta.url), { workerData });
    worker.unref();
  } catch {
    return null; // e.g. no permission to read the worker's module
  }
  return { worker, ctl, job: 0, alive: true };
}

/** Resolves once the worker runs jobs (false if it has not after `ms`). */
export async function poolReady(pool: Pool, ms = 10_000): Promise<boolean> {
  const until = performance.now() + ms;
  while (Atomics.load(pool.ctl, CTL.ready) === 0) {
    if (performance.now() > until) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

/**
 * Runs `kernel` over rows [0, rows): the upper half on the worker, the lower
 * one here through `local(r0, r1)`, and returns when both are done. Before
 * the worker is ready, all rows run here.
 */
export function runSplit(
  pool: Pool,
  kernel: number,
  args: number[],
  local: (r0: number, r1: number) => void,
): void {
  const rows = args[1];
  const c = pool.ctl;
  if (!pool.alive || Atomics.load(c, CTL.ready) !== 1) return local(0, rows);
  const mid = rows >> 1;
  for (let i = 0; i < 10; i++) c[CTL.args + i] = args[i];
  c[CTL.args + 4] = mid;
  c[CTL.args + 5] = rows;
  c[CTL.kernel] = kernel;
  const job = pool.job = (pool.job + 1) & 0x3fffffff;
  Atomics.store(c, CTL.job, job);
  Atomics.notify(c, CTL.job);
  local(0, mid);
  const start = performance.now();
  for (let spins = 0;; spins++) {
    const done = Atomics.load(c, CTL.done);
    if (done === job && Atomics.load(c, CTL.ready) === 1) return;
    if (done === job || (spins > SPINS && performance.now() - start > DEAD_MS)) break;
    if (spins > SPINS) Atomics.wait(c, CTL.done, done, 1);
  }
  pool.alive = false;
  local(mid, rows);
}

/** Stops the worker; its thread ends and the process may exit. */
export function stopPool(pool: Pool): void {
  Atomics.store(pool.ctl, CTL.job, -1);
  Atomics.notify(pool.ctl, CTL.job);
  pool.worker.terminate();
}
