/**
 * A CPU engine holds its quantized weights once: the loader reads them straight into the WASM
 * kernels' memory, which the kernels read in place. Before, each matrix was read into a JS buffer
 * and copied into that memory on first use, and both were kept: the 1.1 B Q4_0 bench model's
 * serving node held ~1.3 GiB for a 481 MB file (tests/bench/rss.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { GgmlType } from "./ggml-type.ts";
import { createCpuEngine } from "./cpu-engine.ts";
import { setWasmThreads, wasmKernelVariant, wasmWeightsHeld } from "./quant/wasm/mod.ts";
import { writeTestModel } from "../tests/support/test-models.ts";

async function heldAfterUse(path: string) {
  const before = wasmWeightsHeld();
  const engine = await createCpuEngine({ path, ctxSize: 64 });
  const session = engine.createSession();
  session.evaluate([1, 2, 3, 4, 5]); // several rows: the Q4_0 multi-vector kernel
  session.evaluate([6]); // one row: the matVec kernel
  const after = wasmWeightsHeld();
  return {
    weightBytes: engine.info.weightBytes,
    inPlace: after.inPlace - before.inPlace,
    copied: after.copied - before.copied,
  };
}

Deno.test("the CPU engine's quantized weights are read into the kernels' memory, none copied there", async () => {
  assert.equal(wasmKernelVariant(), "relaxed", "Deno runs the relaxed-SIMD kernels");
  const dir = await Deno.makeTempDir({ prefix: "grove-in-place-" });
  try {
    const path = join(dir, "q4_0.gguf");
    // Every matrix Q4_0 (embedding and head too), which the WASM kernels take.
    await writeTestModel(path, {
      arch: "llama",
      type: GgmlType.Q4_0,
      dim: 64,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      ffn: 128,
      seed: 11,
    });
    for (const threads of [true, false]) {
      // One thread (GROVE_WASM_THREADS=0, a one-core machine) runs on a shared memory as well,
      // so weights can live there: an unshared one detaches their views when it grows.
      await setWasmThreads(threads);
      const held = await heldAfterUse(path);
      assert.ok(held.weightBytes > 0);
      assert.equal(held.copied, 0, `${threads ? "two threads" : "one thread"}: nothing copied`);
      assert.equal(held.inPlace, held.weightBytes, "every matrix is read into the kernels' memory");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
