/**
 * The experts' products of a MoE layer on the GPU, as ggml's mul_mat_id: for every (row,
 * choice) pair of a step, the matvec of the pair's x with the expert the router chose for it,
 * the expert read from a u32 buffer on the device (moe.wgsl ROUTE writes it), so no readback
 * happens between layers and only the chosen experts' rows are read. The kernel is
 * matvec.wgsl's unit_dot for every weight type (the text of that file before its `fn finish`)
 * with moe_matvec.wgsl's entry point appended.
 */
import { ggmlTypeName } from "../../ggml-type.ts";
import type { GpuWeightType } from "../kernel-types.ts";
import type { Gpu } from "../device.ts";
import { getPipeline } from "../pipelines.ts";
import { type GpuMatrix, rowsMatrix } from "../weights.ts";
import { definesKey, preprocessWgsl, wgslSource } from "../wgsl.ts";
import { matVecDefines, matVecSupports, UNIT_VALUES } from "./matvec.ts";

const MATVEC = new URL("./matvec.wgsl", import.meta.url);
const ENTRY = new URL("./moe_matvec.wgsl", import.meta.url);
const MAX_GRID = 65535;

/** matvec.wgsl's declarations and unit_dot, then the mul_mat_id entry point. */
function moeMatVecSource(): string {
  const matvec = wgslSource(MATVEC);
  const cut = matvec.indexOf("\nfn finish(");
  if (cut < 0) throw new Error("moe matvec: matvec.wgsl has no `fn finish` to cut before");
  return matvec.slice(0, cut) + "\n" + wgslSource(ENTRY);
}

export interface MoeMatVecOptions {
  /** Pair p reads x row floor(p / xPairDiv): `used` for the experts' shared input, 1 for down. */
  xPairDiv: number;
  /** Values per x row. */
  xStride: number;
  variant?: "row" | "workgroup";
  workgroupSize?: number;
}

export interface MoeMatVecOp {
  /** Records the products of `pairs` (row, choice) pairs. */
  encode(pass: GPUComputePassEncoder, pairs: number): void;
  destroy(): void;
}

/** y[p · rows + r] = row r of expert ids[p] of the stack `m` (experts · rows rows) · x(p). */
export function createMoeMatVec(
  gpu: Gpu,
  m: GpuMatrix,
  experts: number,
  bufs: { x: GPUBuffer; y: GPUBuffer; ids: GPUBuffer },
  opts: MoeMatVecOptions,
): MoeMatVecOp {
  if (!matVecSupports(m.type, m.cols)) {
    throw new Error(`moe matvec: ${ggmlTypeName(m.type)} with ${m.cols} columns is not supported`);
  }
  const stack = rowsMatrix(m, "moe matvec");
  const expertRows = m.rows / experts;
  if (!Number.isInteger(expertRows)) {
    throw new Error(`moe matvec: ${m.name} has ${m.rows} rows, not ${experts} experts' worth`);
  }
  if (opts.xStride % 4 !== 0) throw new Error(`moe matvec: x rows of ${opts.xStride} values`);
  const variant = opts.variant ?? (gpu.isFallback ? "row" : "workgroup");
  if (variant === "workgroup" && expertRows > MAX_GRID) {
    throw new Error(`moe matvec: ${expertRows} rows per expert exceed one grid dimension`);
  }
  const workgroupSize = opts.workgroupSize ?? 64;
  const defines = {
    ...matVecDefines(m.type, variant, {
      workgroupSize,
      bias: false,
      accumulate: false,
      f16Native: !gpu.isFallback && gpu.f16,
    }),
    MOE_ID: true,
  };
  const { device } = gpu;
  const pipeline = getPipeline(
    device,
    `moe-matvec|${definesKey(defines)}`,
    () => preprocessWgsl(moeMatVecSource(), defines, "moe_matvec.wgsl"),
  );
  const units = m.cols / UNIT_VALUES[m.type as GpuWeightType];
  const uniforms: GPUBuffer[] = [];
  const uniform = (label: string, words: number[]) => {
    const data = new Uint32Array(words);
    const b = device.createBuffer({
      label,
      size: data.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(b, 0, data);
    uniforms.push(b);
    return b;
  };
  const groups: GPUBindGroup[] = [];
  for (const part of stack.parts) {
    if (part.rows === 0) continue;
    if (part.firstRow % expertRows !== 0 || part.rows % expertRows !== 0) {
      throw new Error(
        `moe matvec: ${m.name}'s buffer of rows [${part.firstRow}, ` +
          `${part.firstRow + part.rows}) splits an expert; upload it with rowsMultiple`,
      );
    }
    const params = uniform(`moe matvec params ${m.name}`, [
      part.rows,
      m.cols,
      m.rowBytes,
      units,
      0,
      0,
      0,
      0,
    ]);
    const moe = uniform(`moe matvec experts ${m.name}`, [
      expertRows,
      part.firstRow / expertRows,
      part.rows / expertRows,
      opts.xPairDiv,
      opts.xStride / 4,
      0,
      0,
      0,
    ]);
    groups.push(device.createBindGroup({
      label: `moe matvec ${m.name}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: part.buffer } },
        { binding: 2, resource: { buffer: bufs.x } },
        { binding: 3, resource: { buffer: bufs.y } },
        { binding: 5, resource: { buffer: moe } },
        { binding: 6, resource: { buffer: bufs.ids } },
      ],
    }));
  }
  const gx = variant === "row" ? Math.ceil(expertRows / workgroupSize) : expertRows;
  return {
    encode(pass, pairs) {
      if (pairs > MAX_GRID) throw new Error(`moe matvec: ${pairs} pairs exceed one grid dimension`);
      pass.setPipeline(pipeline);
      for (const g of groups) {
        pass.setBindGroup(0, g);
        pass.dispatchWorkgroups(gx, pairs);
      }
    },
    destroy() {
      for (const u of uniforms) u.destroy();
    },
  };
}
