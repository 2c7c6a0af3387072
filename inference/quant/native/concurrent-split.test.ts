/**
 * Deno workers in one process share the native library and its one helper thread: products
 * split across threads from two workers at once must all finish with the right outputs (a
 * second caller once overwrote the first's pending half, and both waited forever).
 */
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { setNativeKernels } from "./matvec-native.ts";
import { splitProduct } from "../../../tests/support/native-split-worker.ts";
import { freshNativeBuild } from "../../../tests/support/native-build.ts";

Deno.test("two workers splitting products on the native kernels' threads at once all finish, right", async () => {
  const lib = await freshNativeBuild();
  if (lib === null) return;
  assert.ok(setNativeKernels(true, lib));
  const { run, size } = splitProduct();
  const want = new Float32Array(size);
  assert.ok(run(want));
  const url = new URL("../../../tests/support/native-split-worker.ts", import.meta.url);
  const workers = [0, 1].map(() => new Worker(url, { workerData: { lib, times: 400 } }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const results = workers.map((w) =>
      new Promise<Float32Array[]>((resolve, reject) => {
        w.on("message", resolve);
        w.on("error", reject);
      })
    );
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("split products still running after 120 s")),
        120_000,
      );
    });
    for (const outs of await Promise.race([Promise.all(results), deadline])) {
      assert.equal(outs.length, 8);
      for (const out of outs) assert.deepEqual(out, want);
    }
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => w.terminate()));
  }
});
