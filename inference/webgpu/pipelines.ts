/**
 * Compute pipelines cached per device by a key such as "matvec|Q4_0|WG=64":
 * shader compilation is slow (seconds on llvmpipe), so each variant is built once.
 */

const caches = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function cacheOf(device: GPUDevice): Map<string, GPUComputePipeline> {
  let cache = caches.get(device);
  if (!cache) {
    cache = new Map();
    caches.set(device, cache);
  }
  return cache;
}

/**
 * The pipeline for `key`, compiled from `code()` on first use with entry point
 * `main` and an automatic layout. Shader compile errors throw with the key.
 */
export function getPipeline(
  device: GPUDevice,
  key: string,
  code: () => string,
  entryPoint = "main",
): GPUComputePipeline {
  const cache = cacheOf(device);
  const hit = cache.get(key);
  if (hit) return hit;
  const module = device.createShaderModule({ label: key, code: code() });
  const pipeline = device.createComputePipeline({
    label: key,
    layout: "auto",
    compute: { module, entryPoint },
  });
  cache.set(key, pipeline);
  return pipeline;
}

/** Like getPipeline but waits for compilation and reports WGSL errors with line numbers. */
export async function getPipelineChecked(
  device: GPUDevice,
  key: string,
  code: () => string,
  entryPoint = "main",
): Promise<GPUComputePipeline> {
  const cache = cacheOf(device);
  const hit = cache.get(key);
  if (hit) return hit;
  const module = device.createShaderModule({ label: key, code: code() });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length > 0) {
    const text = errors.map((m) => `  line ${m.lineNum}:${m.linePos} ${m.message}`).join("\n");
    throw new Error(`WGSL compile failed for ${key}:\n${text}`);
  }
  device.pushErrorScope("validation");
  const pipeline = await device.createComputePipelineAsync({
    label: key,
    layout: "auto",
    compute: { module, entryPoint },
  });
  const err = await device.popErrorScope();
  if (err) throw new Error(`pipeline ${key}: ${err.message}`);
  cache.set(key, pipeline);
  return pipeline;
}
