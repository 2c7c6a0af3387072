/**
 * The experts' products of a MoE layer on the GPU, as ggml's mul_mat_id: for every (row,
 * choice) pair of a step, the product of the pair's x with the expert the router chose for it,
 * the expert read from a u32 buffer on the device (moe.wgsl ROUTE writes it), so no readback
 * happens between layers and only the chosen experts' rows are read.
 * - decode (createMoeMatVec): one matvec per pair, matvec.wgsl's unit_dot for every weight
 *   type (the text of that file before its `fn finish`) with moe_matvec.wgsl's entry point;
 * - prefill (createMoeMatMul): per expert, its pairs (moe.wgsl GROUP) in tiles, each weight
 *   unit decoded once per tile: matmul.wgsl's decode_unit with moe_matmul.wgsl's entry point.
 */
import { ggmlTypeName } from "../../ggml-type.ts";
import type { GpuWeightType } from "../kernel-types.ts";
import type { Gpu } from "../device.ts";
import { getPipeline } from "../pipelines.ts";
import { type GpuMatrix, rowsMatrix } from "../weights.ts";
import { definesKey, preprocessWgsl, wgslSource } from "../wgsl.ts";
import { matVecDefines, matVecSupports, UNIT_VALUES } from "./matvec.ts";
import { matMulSupports, UNIT_VEC4 } from "./matmul.ts";
import { weightDefine } from "../weights.ts";

const MATVEC = new URL("./matvec.wgsl", import.meta.url);
const ENTRY = new URL("./moe_matvec.wgsl", import.meta.url);
const MATMUL = new URL("./matmul.wgsl", import.meta.url);
const MATMUL_ENTRY = new URL("./moe_matmul.wgsl", import.meta.url);
const MAX_GRID = 65535;

/** A uniform buffer holding `words`, written now and kept in `held` for the caller to destroy. */
function uniformOf(device: GPUDevice, label: string, words: number[], held: GPUBuffer[]) {
  const data = new Uint32Array(words);
  const b = device.createBuffer({
    label,
    size: data.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(b, 0, data);
  held.push(b);
  return b;
}

/** matvec.wgsl's declarations and unit_dot, then the mul_mat_id entry point (unprocessed). */
export function moeMatVecSource(): string {
  const matvec = wgslSource(MATVEC);
  const cut = matvec.indexOf("\nfn finish(");
  if (cut < 0) throw new Error("moe matvec: matvec.wgsl has no `fn finish` to cut before");
  return matvec.slice(0, cut) + "\n" + wgslSource(ENTRY);
}

/** matmul.wgsl's declarations and decode_unit, then the grouped mul_mat_id entry point. */
function moeMatMulSource(): string {
  const matmul = wgslSource(MATMUL);
  const cut = matmul.indexOf("\n@compute");
  if (cut < 0) throw new Error("moe matmul: matmul.wgsl has no entry point to cut before");
  return matmul.slice(0, cut) + "\n" + wgslSource(MATMUL_ENTRY);
}

export interface MoeMatVecOptions {
  /** Pair p reads x row floor(p / xPairDiv): `used` for the experts' shared input, 1 for down. */
  xPairDiv: number;
  /** Values per x row. */
  xStride: number;
  /** Default: "row" on fallback adapters, "subgroup" where the device has subgroups. */
  variant?: "row" | "workgroup" | "subgroup";
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
  const variant = opts.variant ??
    (gpu.isFallback ? "row" : gpu.subgroups ? "subgroup" : "workgroup");
  if (variant === "subgroup" && !gpu.subgroups) {
    throw new Error(`moe matvec: the subgroup variant needs the subgroups feature`);
  }
  if (variant !== "row" && expertRows > MAX_GRID) {
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
  const uniform = (label: string, words: number[]) => uniformOf(device, label, words, uniforms);
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

export interface MoeMatMulOp {
  /** Records the products of a step of `n` rows (n · used pairs, grouped by expert). */
  encode(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
}

/** What moe.wgsl GROUP writes: each expert's pair count and its pairs (maxRows slots each). */
export interface MoeGroups {
  counts: GPUBuffer;
  lists: GPUBuffer;
  maxRows: number;
}

/**
 * The same products for a prefill step of n rows, grouped by expert: y[p · rows + r] for every
 * pair p, each expert's weight units decoded once per TILE of its pairs.
 */
export function createMoeMatMul(
  gpu: Gpu,
  m: GpuMatrix,
  experts: number,
  bufs: { x: GPUBuffer; y: GPUBuffer; groups: MoeGroups },
  opts: Pick<MoeMatVecOptions, "xPairDiv" | "xStride" | "workgroupSize"> & { tile?: number },
): MoeMatMulOp {
  if (!matMulSupports(m.type, m.cols)) {
    throw new Error(`moe matmul: ${ggmlTypeName(m.type)} with ${m.cols} columns is not supported`);
  }
  const stack = rowsMatrix(m, "moe matmul");
  const expertRows = m.rows / experts;
  if (!Number.isInteger(expertRows)) {
    throw new Error(`moe matmul: ${m.name} has ${m.rows} rows, not ${experts} experts' worth`);
  }
  if (opts.xStride % 4 !== 0) throw new Error(`moe matmul: x rows of ${opts.xStride} values`);
  const tile = opts.tile ?? 8;
  const workgroupSize = opts.workgroupSize ?? 64;
  const unitVec4 = UNIT_VEC4[m.type as GpuWeightType];
  const defines = {
    [weightDefine(m.type)]: true,
    WG: workgroupSize,
    TILE: tile,
    UNIT_VEC4: unitVec4,
    MOE_ID: true,
  };
  const { device } = gpu;
  const pipeline = getPipeline(
    device,
    `moe-matmul|${definesKey(defines)}`,
    () => preprocessWgsl(moeMatMulSource(), defines, "moe_matmul.wgsl"),
  );
  const units = m.cols / (unitVec4 * 4);
  const uniforms: GPUBuffer[] = [];
  const uniform = (label: string, words: number[]) => uniformOf(device, label, words, uniforms);
  const { groups } = bufs;
  const steps: { bindGroup: GPUBindGroup; experts: number }[] = [];
  for (const part of stack.parts) {
    if (part.rows === 0) continue;
    if (part.firstRow % expertRows !== 0 || part.rows % expertRows !== 0) {
      throw new Error(
        `moe matmul: ${m.name}'s buffer of rows [${part.firstRow}, ` +
          `${part.firstRow + part.rows}) splits an expert; upload it with rowsMultiple`,
      );
    }
    const partExperts = part.rows / expertRows;
    if (partExperts > MAX_GRID) throw new Error(`moe matmul: ${partExperts} experts in a buffer`);
    const params = uniform(`moe matmul params ${m.name}`, [
      part.rows,
      m.cols,
      m.rowBytes,
      units,
      0,
      0,
      0,
      0,
    ]);
    const moe = uniform(`moe matmul experts ${m.name}`, [
      expertRows,
      part.firstRow / expertRows,
      partExperts,
      opts.xPairDiv,
      opts.xStride / 4,
      groups.maxRows,
      0,
      0,
    ]);
    steps.push({
      experts: partExperts,
      bindGroup: device.createBindGroup({
        label: `moe matmul ${m.name}`,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: params } },
          { binding: 1, resource: { buffer: part.buffer } },
          { binding: 2, resource: { buffer: bufs.x } },
          { binding: 3, resource: { buffer: bufs.y } },
          { binding: 5, resource: { buffer: moe } },
          { binding: 6, resource: { buffer: groups.counts } },
          { binding: 7, resource: { buffer: groups.lists } },
        ],
      }),
    });
  }
  const gx = Math.ceil(expertRows / workgroupSize);
  return {
    // An expert gets at most one pair per row: n rows need ceil(n / tile) tiles.
    encode(pass, n) {
      if (n > groups.maxRows) throw new Error(`moe matmul: ${n} rows, the lists hold fewer`);
      pass.setPipeline(pipeline);
      for (const s of steps) {
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(gx, Math.ceil(n / tile), s.experts);
      }
    },
    destroy() {
      for (const u of uniforms) u.destroy();
    },
  };
}
