/**
 * A helper thread for the WASM kernels (threads.ts): it instantiates the
 * shared-memory build on the same WebAssembly.Memory as the main thread,
 * then runs the row ranges it is handed through the control block, with no
 * message per product: wait on the job counter, run, publish it as done.
 */
import { workerData } from "node:worker_threads";
import { CTL } from "./threads.ts";

interface Start {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Int32 index of the control block in the memory. */
  ctl: number;
  /** Top of this thread's own shadow stack. */
  stackTop: number;
  kernels: string[];
}

{
  const { module, memory, ctl, stackTop, kernels } = workerData as Start;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const ex = instance.exports as Record<string, unknown>;
  (ex.__stack_pointer as WebAssembly.Global).value = stackTop;
  const fns = kernels.map((k) => ex[k] as (...args: number[]) => void);
  const c = new Int32Array(memory.buffer, ctl * 4, CTL.size);
  Atomics.store(c, CTL.ready, 1);
  Atomics.notify(c, CTL.ready);
  let seen = 0;
  for (;;) {
    Atomics.wait(c, CTL.job, seen);
    seen = Atomics.load(c, CTL.job);
    if (seen < 0) break;
    const a = c.subarray(CTL.args, CTL.args + 10);
    try {
      fns[c[CTL.kernel]](a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
    } catch {
      Atomics.store(c, CTL.ready, -1); // the main thread redoes these rows
    }
    Atomics.store(c, CTL.done, seen);
    Atomics.notify(c, CTL.done);
  }
}
