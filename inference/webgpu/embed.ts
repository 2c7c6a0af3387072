/**
 * Embeddings on the WebGPU engine, the same steps as inference/embed.ts: the tokens through the
 * layers in chunks of the engine's batch, the output norm on the rows pooling needs (every row
 * for `mean`, the last for `last`) into the scratch's `xb`, read back and pooled on the host, then
 * L2-normalised. Its scratch and KV cache (sized to the input) are its own and freed at the end.
 */
import type { Pooling } from "../embed.ts";
import { l2Normalize } from "../embed.ts";
import {
  createEmbedder,
  createReader,
  createScratch,
  scratchBuffer,
  sequenceStack,
} from "./forward.ts";
import { bindRowNorm } from "./kernels/row_norm.ts";
import { writeTokenIds } from "./kernels/embed.ts";
import { checkDevice, checkIds, type GpuModel } from "./webgpu-engine.ts";

export async function gpuEmbed(
  model: GpuModel,
  tokens: readonly number[],
  pooling: Pooling,
): Promise<Float32Array> {
  const { gpu, config, weights, maxBatch } = model;
  const { device } = gpu;
  const { dim, normEps: eps } = config;
  if (!weights.outputNorm || weights.layers.length !== config.layers) {
    throw new Error("embeddings need the whole model (token embedding, every layer, output norm)");
  }
  if (tokens.length === 0) throw new Error("an embedding needs at least one token");
  checkIds(tokens, config.vocabSize);
  const scratch = createScratch(device, config, maxBatch);
  const ids = scratchBuffer(device, maxBatch, "embed token ids");
  const stack = sequenceStack(gpu, config, weights, tokens.length, scratch);
  const embed = createEmbedder(device, weights, ids, scratch.hidden);
  const norm = bindRowNorm(device, {
    x: scratch.hidden,
    weight: weights.outputNorm,
    out: scratch.xb,
  }, {
    n: dim,
    rows: 1,
    eps,
  });
  const reader = createReader(device, maxBatch * dim * 4, "embedding rows");
  const sum = new Float64Array(dim);
  try {
    for (let start = 0; start < tokens.length; start += maxBatch) {
      const chunk = tokens.slice(start, start + maxBatch);
      const n = chunk.length;
      const last = start + n === tokens.length;
      const rows = pooling === "mean" ? n : last ? 1 : 0;
      writeTokenIds(device, ids, chunk, config.vocabSize);
      const enc = device.createCommandEncoder({ label: "embed" });
      const pass = enc.beginComputePass();
      embed.update({ n });
      embed.encode(pass);
      stack.encode(pass, n, start);
      if (rows > 0) {
        norm.update({ n: dim, rows, eps, xOffset: (n - rows) * dim, outOffset: 0 });
        norm.encode(pass);
      }
      pass.end();
      if (rows > 0) reader.copy(enc, scratch.xb, rows * dim * 4);
      device.queue.submit([enc.finish()]);
      if (rows === 0) continue;
      const normed = new Float32Array(await reader.read(rows * dim * 4));
      checkDevice(gpu);
      for (let i = 0; i < normed.length; i++) sum[i % dim] += normed[i];
    }
  } finally {
    for (const k of [stack, embed, norm, reader]) k.destroy();
    ids.destroy();
    for (const b of Object.values(scratch)) if (b instanceof GPUBuffer) b.destroy();
  }
  const count = pooling === "mean" ? tokens.length : 1;
  return l2Normalize(Float32Array.from(sum, (v) => v / count));
}
