/**
 * Uploading a model leaves no host copy of its weights behind: wgpu stages every upload in host
 * memory and, unless the queue is flushed as the upload goes (load-weights.ts flushStaging),
 * keeps all of it pooled after the first submit. On llvmpipe the device memory is host memory
 * too, so the process then held the weights three times over the upload (file read, staging,
 * device) and twice after it; the 1.1 B bench model's WebGPU node held ~450 MiB more.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { GgmlType } from "../ggml-type.ts";
import { openGguf } from "../gguf.ts";
import { modelConfigOf } from "../model-config.ts";
import { bytesFor } from "../quant/mod.ts";
import { uploadWeights } from "./load-weights.ts";
import { buildTestModel } from "../../tests/support/test-models.ts";
import { writeGguf } from "../../tests/support/gguf-writer.ts";
import { createTestGpu } from "../../tests/support/gpu.ts";
import { memoryKiB } from "../../tests/support/process-memory.ts";

const MiB = 1024 * 1024;

/**
 * A llama of ~190 MiB of Q4_0 matrices whose bytes are a fill pattern: what the upload costs
 * depends on the sizes, not the values, and quantizing real values would take a minute.
 */
async function writeBigModel(path: string): Promise<void> {
  const contents = await buildTestModel({
    arch: "llama",
    type: GgmlType.Q4_0,
    dim: 2048,
    layers: 8,
    heads: 16,
    kvHeads: 4,
    ffn: 5632,
    seed: 5,
  });
  contents.tensors = contents.tensors.map((t, i) => {
    if (t.type !== GgmlType.Q4_0) return t;
    const n = t.dims.reduce((a, b) => a * b, 1);
    return { ...t, data: () => new Uint8Array(bytesFor(t.type, n)).fill(0x11 + (i & 0x3f)) };
  });
  await writeGguf(path, contents);
}

Deno.test({
  name: "uploadWeights lets wgpu's staging copies go: the process grows by the weights, not twice",
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-upload-memory-" });
  try {
    const path = join(dir, "big.gguf");
    await writeBigModel(path);
    const gpu = await createTestGpu();
    const file = await openGguf(path);
    const config = modelConfigOf(file);
    const before = memoryKiB(Deno.pid) * 1024;
    const weights = await uploadWeights(gpu, file, config);
    // Without the flushes, this first submit is where every staged copy lands and stays.
    gpu.device.queue.submit([]);
    await gpu.device.queue.onSubmittedWorkDone();
    const grown = memoryKiB(Deno.pid) * 1024 - before;
    try {
      assert.ok(weights.bytes > 150 * MiB, `weights ${weights.bytes} bytes`);
      // On llvmpipe the device memory is in the process (~1.1×); with every staging copy kept,
      // ~2.1×. A GPU with memory of its own grows by little.
      assert.ok(
        grown < 1.5 * weights.bytes,
        `grew ${(grown / MiB).toFixed(0)} MiB for ${(weights.bytes / MiB).toFixed(0)} MiB ` +
          `of weights on ${gpu.adapterName}`,
      );
    } finally {
      for (const m of weights.memory) m.destroy();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
