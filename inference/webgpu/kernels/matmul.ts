/**
 * Matrix-matrix product for prefill: Y (n x rows) = X (n x cols) · Wᵀ
 * (+ bias) (+ Y), with W in its ggml encoding. Each invocation decodes a
 * weight unit once and applies it to a tile of tokens (see matmul.wgsl).
 */
import { blockGeometry, GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { type GpuWeightType, isGpuWeightType } from "../kernel-types.ts";
import type { Gpu } from "../device.ts";
import { getPipeline } from "../pipelines.ts";
import { type GpuMatrix, rowsMatrix, weightDefine } from "../weights.ts";
import { type Defines, definesKey, loadWgslSync } from "../wgsl.ts";
import { createMatMulRows4 } from "./matmul_rows4.ts";
import type { XShare } from "./x-windows.ts";

/**
 * "tile": one weight row x TILE tokens per invocation, x read from storage;
 * "rows4": 4 rows x 8 or 16 tokens per invocation from the rows4 texture layout,
 * x tiles via workgroup memory (llvmpipe; Q4_0 and Q4_K only, see matmul_rows4.wgsl).
 */
export type MatMulVariant = "tile" | "rows4";

export interface MatMulOptions {
  /** Default: "rows4" for a matrix in the rows4 layout, else "tile". */
  variant?: MatMulVariant;
  /** rows4: tokens per tile (1..32; default 8 up to 8 tokens, else 16). */
  tileTokens?: number;
  /** Tokens per invocation (default 8). */
  tile?: number;
  /** Invocations per workgroup (default 64). */
  workgroupSize?: number;
  bias?: GPUBuffer;
  biasOffset?: number;
  /** Y += X Wᵀ (fused residual add). */
  accumulate?: boolean;
  /** Floats per token row of Y (default m.rows). */
  yStride?: number;
  /** Column of Y for weight row 0 (default 0). */
  yOffset?: number;
  /** rows4: a shared x window and the group whose x copy it may reuse (x-windows.ts). */
  xShare?: XShare;
}

export interface MatMulOp {
  /**
   * Records the dispatches for `n` tokens (X rows). The token count lives in a
   * uniform written at encode time, so all encodes of one op in one submit must
   * use the same n.
   */
  encode(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
}

const SHADER = new URL("./matmul.wgsl", import.meta.url);

/** vec4s of x per weight unit, per weight type (see matmul.wgsl). */
export const UNIT_VEC4: Record<GpuWeightType, number> = {
  [GgmlType.F32]: 1,
  [GgmlType.F16]: 1,
  [GgmlType.BF16]: 1,
  [GgmlType.Q8_0]: 8,
  [GgmlType.Q4_0]: 8,
  [GgmlType.Q4_K]: 16,
  [GgmlType.Q5_K]: 16,
  [GgmlType.Q6_K]: 32,
  [GgmlType.Q5_0]: 8,
  [GgmlType.Q5_1]: 8,
  [GgmlType.IQ4_NL]: 8,
  [GgmlType.MXFP4]: 8,
  [GgmlType.Q2_K]: 8,
  [GgmlType.Q3_K]: 8,
  [GgmlType.IQ4_XS]: 8,
};

export function matMulSupports(type: GgmlType, cols: number): boolean {
  return isGpuWeightType(type) && cols > 0 && cols % (UNIT_VEC4[type] * 4) === 0 &&
    // K-quant units are part of a 256-value block; the row must still be whole blocks.
    cols % blockGeometry(type)!.blockSize === 0;
}

/**
 * The kernel for this matrix: rows4 reads only the rows4 texture layout (which
 * is uploaded on software adapters, where it measured fastest), tile only rows.
 */
export function defaultMatMulVariant(
  _gpu: Pick<Gpu, "isFallback">,
  m: Pick<GpuMatrix, "layout">,
): MatMulVariant {
  return m.layout === "rows4" ? "rows4" : "tile";
}

export function createMatMul(
  gpu: Gpu,
  m: GpuMatrix,
  x: GPUBuffer,
  y: GPUBuffer,
  opts: MatMulOptions = {},
): MatMulOp {
  if (!matMulSupports(m.type, m.cols)) {
    throw new Error(`matmul: ${ggmlTypeName(m.type)} with ${m.cols} columns is not supported`);
  }
  const variant = opts.variant ?? defaultMatMulVariant(gpu, m);
  if (variant === "rows4") return createMatMulRows4(gpu, m, x, y, opts);
  const rows = rowsMatrix(m, "matmul tile");
  const tile = opts.tile ?? 8;
  const workgroupSize = opts.workgroupSize ?? 64;
  const unitVec4 = UNIT_VEC4[m.type as GpuWeightType];
  const defines: Defines = {
    [weightDefine(m.type)]: true,
    WG: workgroupSize,
    TILE: tile,
    UNIT_VEC4: unitVec4,
    BIAS: opts.bias !== undefined,
    ACCUMULATE: opts.accumulate ?? false,
  };
  const { device } = gpu;
  const pipeline = getPipeline(
    device,
    `matmul|${definesKey(defines)}`,
    () => loadWgslSync(SHADER, defines),
  );
  const units = m.cols / (unitVec4 * 4);
  const steps = rows.parts.filter((p) => p.rows > 0).map((part) => {
    const params = new Uint32Array([
      part.rows,
      m.cols,
      m.rowBytes,
      units,
      0, // n, written at encode time
      (opts.yOffset ?? 0) + part.firstRow,
      opts.yStride ?? m.rows,
      (opts.biasOffset ?? 0) + part.firstRow,
    ]);
    const uniform = device.createBuffer({
      label: `matmul params ${m.name}`,
      size: params.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: uniform } },
      { binding: 1, resource: { buffer: part.buffer } },
      { binding: 2, resource: { buffer: x } },
      { binding: 3, resource: { buffer: y } },
    ];
    if (opts.bias) entries.push({ binding: 4, resource: { buffer: opts.bias } });
    const bindGroup = device.createBindGroup({
      label: `matmul ${m.name}`,
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    return { params, uniform, bindGroup, rows: part.rows };
  });
  let lastN = -1;
  return {
    encode(pass, n) {
      if (!Number.isInteger(n) || n < 1) throw new Error(`matmul: bad token count ${n}`);
      if (n !== lastN) {
        for (const s of steps) {
          s.params[4] = n;
          device.queue.writeBuffer(s.uniform, 0, s.params);
        }
        lastN = n;
      }
      pass.setPipeline(pipeline);
      for (const s of steps) {
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(Math.ceil(s.rows / workgroupSize), Math.ceil(n / tile));
      }
    },
    destroy() {
      for (const s of steps) s.uniform.destroy();
    },
  };
}
