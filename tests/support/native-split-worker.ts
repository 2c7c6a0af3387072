/**
 * A Deno worker for inference/quant/native/concurrent-split.test.ts: loads the native library
 * named in the message and runs big (split) products over and over, posting their outputs.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { GgmlType } from "../../inference/ggml-type.ts";
import { quantizeActivations } from "../../inference/quant/activations.ts";
import { quantize } from "../../inference/quant/codec.ts";
import { matVecNative, setNativeKernels } from "../../inference/quant/native/matvec-native.ts";
import { randoms } from "./quant/dots.ts";

/** The product both the workers and the test compute: big enough to split across threads. */
export function splitProduct(): { run: (out: Float32Array) => boolean; size: number } {
  const rows = 256, cols = 4096, n = 4;
  const w = quantize(GgmlType.Q4_0, randoms(rows * cols, 5), cols);
  const a = quantizeActivations(GgmlType.Q4_0, randoms(n * cols, 6), cols, n);
  return { run: (out) => matVecNative(GgmlType.Q4_0, w, rows, cols, a, out), size: n * rows };
}

if (!isMainThread && parentPort) {
  const { lib, times } = workerData as { lib: string; times: number };
  setNativeKernels(true, lib);
  const { run, size } = splitProduct();
  const outs: Float32Array[] = [];
  for (let i = 0; i < times; i++) {
    const out = new Float32Array(size);
    if (!run(out)) throw new Error("native kernels off in the worker");
    if (i % 50 === 0) outs.push(out);
  }
  parentPort.postMessage(outs);
}
