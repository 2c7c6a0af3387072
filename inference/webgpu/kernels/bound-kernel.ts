/**
 * What the small kernels' dispatchers share: their .wgsl beside them, a uniform
 * `Params` buffer owned by each dispatch, and a grid that stays under the
 * 65535-workgroups-per-dimension limit.
 *
 * A kernel is bound once (pipeline, bind group and uniform buffer made up
 * front) and recorded into passes as often as needed; `update` rewrites only
 * its uniform, so a per-token forward pass reuses every object. Each bound
 * kernel owns its own uniform: two dispatches recorded in one encoder never
 * see each other's params (a queue.writeBuffer lands before the submit, so a
 * shared uniform would hold only the last value).
 */
import { getPipeline, getPipelineChecked } from "../pipelines.ts";
import { type Defines, definesKey, loadWgslSync } from "../wgsl.ts";

/** Workgroups per grid dimension that WebGPU guarantees. */
export const MAX_GRID_DIM = 65535;

/** The preprocessed text of `file` (a .wgsl beside the kernels). */
export function kernelSource(file: string, defines: Defines): string {
  return loadWgslSync(new URL(`./${file}`, import.meta.url), defines);
}

/** The cached pipeline of `file` with `defines`, keyed "op|A=1,B=2". */
export function kernelPipeline(
  device: GPUDevice,
  op: string,
  file: string,
  defines: Defines,
): GPUComputePipeline {
  return getPipeline(device, `${op}|${definesKey(defines)}`, () => kernelSource(file, defines));
}

/** Same pipeline, compiled now, with WGSL errors reported by line (use at setup and in tests). */
export function kernelPipelineChecked(
  device: GPUDevice,
  op: string,
  file: string,
  defines: Defines,
): Promise<GPUComputePipeline> {
  return getPipelineChecked(
    device,
    `${op}|${definesKey(defines)}`,
    () => kernelSource(file, defines),
  );
}

/** [x, y] workgroups covering `count` (the kernel folds them back as x + y * num_workgroups.x). */
export function grid(count: number): [number, number] {
  if (count <= MAX_GRID_DIM) return [Math.max(1, count), 1];
  const y = Math.ceil(count / MAX_GRID_DIM);
  if (y > MAX_GRID_DIM) throw new Error(`${count} workgroups exceed a 65535 × 65535 grid`);
  return [Math.ceil(count / y), y];
}

/** A dispatch bound to its buffers, ready to record; `update` changes its params in place. */
export interface BoundKernel<P> {
  encode(pass: GPUComputePassEncoder): void;
  /** Rewrites the uniform (queue.writeBuffer) for the next submit; the variant stays fixed. */
  update(params: P): void;
  /** Frees the uniform buffer (the data buffers belong to the caller). */
  destroy(): void;
}

/** How a dispatcher describes itself to `bindKernel`. */
export interface KernelSpec<P> {
  label: string;
  pipeline: GPUComputePipeline;
  /**
   * Storage buffers for bindings 1, 2, ... in order (binding 0 is the uniform); a
   * GPUBufferBinding binds a range (the batched KV cache binds the slots in use).
   */
  buffers: (GPUBuffer | GPUBufferBinding)[];
  pack: (params: P) => ArrayBuffer;
  /** Workgroups needed for `params`. */
  workgroups: (params: P) => number;
}

export function bindKernel<P>(device: GPUDevice, spec: KernelSpec<P>, params: P): BoundKernel<P> {
  const first = spec.pack(params);
  const uniform = device.createBuffer({
    label: `${spec.label} params`,
    size: Math.max(16, Math.ceil(first.byteLength / 16) * 16),
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  new Uint8Array(uniform.getMappedRange()).set(new Uint8Array(first));
  uniform.unmap();
  const bindGroup = device.createBindGroup({
    label: spec.label,
    layout: spec.pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uniform } },
      ...spec.buffers.map((b, i) => ({
        binding: i + 1,
        resource: b instanceof GPUBuffer ? { buffer: b } : b,
      })),
    ],
  });
  let [gx, gy] = grid(spec.workgroups(params));
  return {
    encode(pass) {
      pass.setPipeline(spec.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(gx, gy);
    },
    update(next) {
      device.queue.writeBuffer(uniform, 0, spec.pack(next));
      [gx, gy] = grid(spec.workgroups(next));
    },
    destroy() {
      uniform.destroy();
    },
  };
}

/** Records `kernels` in one compute pass of a new encoder and submits it (tests, one-offs). */
export function submitKernels(
  device: GPUDevice,
  kernels: { encode(pass: GPUComputePassEncoder): void }[],
): void {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const k of kernels) k.encode(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
}

/** A little-endian packer for Params structs of u32 / f32 fields (all 4 bytes, in order). */
export function packFields(fields: readonly (["u32" | "f32", number])[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach(([kind, value], i) => {
    if (kind === "u32") {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new Error(`params field ${i}: ${value} is not a u32`);
      }
      view.setUint32(i * 4, value, true);
    } else {
      view.setFloat32(i * 4, value, true);
    }
  });
  return buf;
}
