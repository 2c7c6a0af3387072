/**
 * Quantized matrix-vector product on the GPU (decode): y = W x (+ bias)
 * (+ y). W stays in its ggml encoding (see weights.ts); x and y are f32.
 * Bind groups and params are built once per (matrix, x, y) so a forward pass
 * only encodes prebuilt dispatches each token.
 */
import { blockGeometry, GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { type GpuWeightType, isGpuWeightType } from "../kernel-types.ts";
import type { Gpu } from "../device.ts";
import { getPipeline } from "../pipelines.ts";
import { type GpuMatrix, rowsMatrix, weightDefine } from "../weights.ts";
import { rows4Half, rows4LayoutSupports, rows4Texels } from "../rows4-layout.ts";
import { type Defines, definesKey, loadWgslSync } from "../wgsl.ts";
import { holdsX, holdX, type XShare } from "./x-windows.ts";

/**
 * "row": one row per invocation; "workgroup": one row per workgroup + reduction
 * (real GPUs); "subgroup": the same with the reduction in subgroupAdd (adapters with
 * the subgroups feature); all three read the "rows" layout. "rows4": 4 rows per
 * invocation from the rows4 texture layout, x in a uniform buffer (llvmpipe; Q4_0
 * and Q4_K only, see matvec_rows4.wgsl).
 */
export type MatVecVariant = "row" | "workgroup" | "subgroup" | "rows4";

export interface MatVecOptions {
  variant?: MatVecVariant;
  /** Invocations per workgroup (default 64). */
  workgroupSize?: number;
  /** Added to each output: bias[biasOffset + r]. */
  bias?: GPUBuffer;
  biasOffset?: number;
  /** y[r] += W x instead of y[r] = W x (fused residual add). */
  accumulate?: boolean;
  /** First x value (a multiple of 4). */
  xOffset?: number;
  /** y index of row 0. */
  yOffset?: number;
  /**
   * With shader-f16: read F16 weights as vec4<f16> instead of unpack2x16float.
   * Default: off on fallback adapters, where unpacking measured faster (llvmpipe).
   */
  f16Native?: boolean;
  /** rows4: a shared x window, and the group of products whose x copy it may reuse. */
  xShare?: XShare;
}

export interface MatVecOp {
  /** Records the dispatches (one per weight buffer) into `pass`. */
  encode(pass: GPUComputePassEncoder): void;
  destroy(): void;
}

const SHADER = new URL("./matvec.wgsl", import.meta.url);
const ROWS4_SHADER = new URL("./matvec_rows4.wgsl", import.meta.url);

/** Values per unit_dot call, per weight type (see matvec.wgsl). */
export const UNIT_VALUES: Record<GpuWeightType, number> = {
  [GgmlType.F32]: 4,
  [GgmlType.F16]: 4,
  [GgmlType.BF16]: 4,
  [GgmlType.Q8_0]: 32,
  [GgmlType.Q4_0]: 32,
  [GgmlType.Q4_K]: 64,
  [GgmlType.Q5_K]: 64,
  [GgmlType.Q6_K]: 64,
  [GgmlType.Q5_0]: 32,
  [GgmlType.Q5_1]: 32,
  [GgmlType.IQ4_NL]: 32,
  [GgmlType.MXFP4]: 32,
  [GgmlType.Q2_K]: 32,
  [GgmlType.Q3_K]: 32,
  [GgmlType.IQ4_XS]: 32,
};

/** Whether matvec handles `type` with rows of `cols` values. */
export function matVecSupports(type: GgmlType, cols: number): boolean {
  return isGpuWeightType(type) && cols > 0 && cols % UNIT_VALUES[type] === 0 &&
    // K-quant units are 64 of a 256-value block; the row must still be whole blocks.
    cols % blockGeometry(type)!.blockSize === 0;
}

/** Largest x (in values) the rows4 variant takes: its uniform binding is at most 64 KiB. */
function rows4MaxCols(gpu: Pick<Gpu, "limits">): number {
  return Math.min(65536, gpu.limits?.maxUniformBufferBindingSize ?? 65536) / 4;
}

/**
 * Whether the rows4 variant handles this matrix: the rows4 layout, a texture
 * row within the device's limit and x that fits a uniform binding.
 */
export function matVecRows4Supports(
  gpu: Pick<Gpu, "limits">,
  type: GgmlType,
  cols: number,
): boolean {
  return rows4LayoutSupports(type, cols) && cols <= rows4MaxCols(gpu) &&
    rows4Texels(cols) <= (gpu.limits?.maxTextureDimension2D ?? 8192);
}

/**
 * The faster variant for this adapter and matrix, as measured by
 * tests/bench/webgpu-matvec.ts: rows4 for a matrix uploaded in that layout,
 * else one row per invocation on software adapters and one per workgroup on
 * GPUs, its reduction in subgroup operations where the device has them.
 */
export function defaultMatVecVariant(
  gpu: Pick<Gpu, "isFallback" | "subgroups">,
  m: Pick<GpuMatrix, "layout">,
): MatVecVariant {
  if (m.layout === "rows4") return "rows4";
  if (gpu.isFallback) return "row";
  return gpu.subgroups ? "subgroup" : "workgroup";
}

export function matVecDefines(type: GgmlType, variant: MatVecVariant, o: {
  workgroupSize: number;
  bias: boolean;
  accumulate: boolean;
  f16Native: boolean;
}): Defines {
  return {
    [weightDefine(type)]: true,
    ROW_PER_THREAD: variant === "row",
    SUBGROUP: variant === "subgroup",
    WG: o.workgroupSize,
    BIAS: o.bias,
    ACCUMULATE: o.accumulate,
    F16_NATIVE: o.f16Native && type === GgmlType.F16,
  };
}

const MAX_GRID = 65535;

/**
 * The WGSL of one variant, what createMatVec compiles; `browser` adds the `enable subgroups;`
 * that browsers' WGSL compilers require (the browser test ships it to a page).
 */
export function matVecSource(
  type: GgmlType,
  variant: Exclude<MatVecVariant, "rows4">,
  o: Partial<Parameters<typeof matVecDefines>[2]> & { browser?: boolean } = {},
): string {
  return loadWgslSync(SHADER, {
    ...matVecDefines(type, variant, {
      workgroupSize: o.workgroupSize ?? 64,
      bias: o.bias ?? false,
      accumulate: o.accumulate ?? false,
      f16Native: o.f16Native ?? false,
    }),
    SUBGROUP_ENABLE: (o.browser ?? false) && variant === "subgroup",
  });
}

export function createMatVec(
  gpu: Gpu,
  m: GpuMatrix,
  x: GPUBuffer,
  y: GPUBuffer,
  opts: MatVecOptions = {},
): MatVecOp {
  if (!matVecSupports(m.type, m.cols)) {
    throw new Error(`matvec: ${ggmlTypeName(m.type)} with ${m.cols} columns is not supported`);
  }
  const xOffset = opts.xOffset ?? 0;
  if (xOffset % 4 !== 0) throw new Error(`matvec: xOffset ${xOffset} is not a multiple of 4`);
  const variant = opts.variant ?? defaultMatVecVariant(gpu, m);
  if (variant === "rows4") return createMatVecRows4(gpu, m, x, y, opts);
  if (variant === "subgroup" && !gpu.subgroups) {
    throw new Error(
      `matvec: the subgroup variant needs the subgroups feature (${gpu.adapterName})`,
    );
  }
  const rows = rowsMatrix(m, `matvec ${variant}`);
  const workgroupSize = opts.workgroupSize ?? 64;
  const defines = matVecDefines(m.type, variant, {
    workgroupSize,
    bias: opts.bias !== undefined,
    accumulate: opts.accumulate ?? false,
    f16Native: (opts.f16Native ?? !gpu.isFallback) && gpu.f16,
  });
  const { device } = gpu;
  const pipeline = getPipeline(
    device,
    `matvec|${definesKey(defines)}`,
    () => loadWgslSync(SHADER, defines),
  );
  const units = m.cols / UNIT_VALUES[m.type as GpuWeightType];
  const yOffset = opts.yOffset ?? 0;
  const uniforms: GPUBuffer[] = [];
  const steps: { bindGroup: GPUBindGroup; grid: [number, number] }[] = [];
  for (const part of rows.parts) {
    if (part.rows === 0) continue;
    const grid: [number, number] = variant === "row"
      ? [Math.ceil(part.rows / workgroupSize), 1]
      : [Math.min(part.rows, MAX_GRID), Math.ceil(part.rows / MAX_GRID)];
    const params = new Uint32Array([
      part.rows,
      m.cols,
      m.rowBytes,
      units,
      xOffset / 4,
      yOffset + part.firstRow,
      (opts.biasOffset ?? 0) + part.firstRow,
      grid[0],
    ]);
    const uniform = device.createBuffer({
      label: `matvec params ${m.name}`,
      size: params.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(uniform, 0, params);
    uniforms.push(uniform);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: uniform } },
      { binding: 1, resource: { buffer: part.buffer } },
      { binding: 2, resource: { buffer: x } },
      { binding: 3, resource: { buffer: y } },
    ];
    if (opts.bias) entries.push({ binding: 4, resource: { buffer: opts.bias } });
    const bindGroup = device.createBindGroup({
      label: `matvec ${m.name}`,
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    steps.push({ bindGroup, grid });
  }
  return {
    encode(pass) {
      pass.setPipeline(pipeline);
      for (const s of steps) {
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(s.grid[0], s.grid[1]);
      }
    },
    destroy() {
      for (const u of uniforms) u.destroy();
    },
  };
}

/**
 * The rows4 variant: a small dispatch writes x (pre-scaled) and its 32-value
 * sums into this op's uniform buffers, then one dispatch per texture computes
 * 4 rows per invocation.
 */
function createMatVecRows4(
  gpu: Gpu,
  m: GpuMatrix,
  x: GPUBuffer,
  y: GPUBuffer,
  opts: MatVecOptions,
): MatVecOp {
  if (!matVecRows4Supports(gpu, m.type, m.cols)) {
    throw new Error(
      `matvec rows4: ${ggmlTypeName(m.type)} with ${m.cols} columns is not supported`,
    );
  }
  if (m.layout !== "rows4") {
    throw new Error(`matvec rows4: ${m.name} is in the ${m.layout} layout, upload it as rows4`);
  }
  const { device } = gpu;
  const workgroupSize = opts.workgroupSize ?? 64;
  const xVec4 = m.cols / 4;
  // One declared x size for all shapes, so widths share pipelines (compiles are slow here).
  const xuVec4 = rows4MaxCols(gpu) / 4;
  const xsVec4 = xuVec4 / 32; // one sum per 32 values, 4 per vec4
  const defines: Defines = {
    [weightDefine(m.type)]: true,
    WG: workgroupSize,
    XU_VEC4: xuVec4,
    XS_VEC4: xsVec4,
    BIAS: opts.bias !== undefined,
    ACCUMULATE: opts.accumulate ?? false,
  };
  const pipeline = getPipeline(
    device,
    `matvec-rows4|${definesKey(defines)}`,
    () => loadWgslSync(ROWS4_SHADER, defines),
  );
  const half = rows4Half(m.type);
  const copy = getPipeline(
    device,
    `matvec-rows4|COPY_X,HALF=${half}`,
    () => loadWgslSync(ROWS4_SHADER, { COPY_X: true, HALF: half }),
  );
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM;
  // The copy reads x from xOffset: only a product reading x from its start shares a window.
  const share = (opts.xOffset ?? 0) === 0 ? opts.xShare : undefined;
  const shared = share?.windows.window(`matvec-rows4|HALF=${half}`, [xuVec4 * 16, xsVec4 * 16]);
  const [xu, xs] = shared?.buffers ?? [
    device.createBuffer({ label: `matvec x ${m.name}`, size: xuVec4 * 16, usage }),
    device.createBuffer({ label: `matvec x sums ${m.name}`, size: xsVec4 * 16, usage }),
  ];
  const uniforms: GPUBuffer[] = [];
  const makeParams = (rows: number, firstRow: number) => {
    const params = new Uint32Array([
      rows,
      m.cols / 256,
      (opts.xOffset ?? 0) / 4,
      xVec4,
      (opts.yOffset ?? 0) + firstRow,
      (opts.biasOffset ?? 0) + firstRow,
      0,
      0,
    ]);
    const uniform = device.createBuffer({
      label: `matvec params ${m.name}`,
      size: params.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(uniform, 0, params);
    uniforms.push(uniform);
    return uniform;
  };
  const copyGroup = device.createBindGroup({
    label: `matvec copy x ${m.name}`,
    layout: copy.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: makeParams(0, 0) } },
      { binding: 2, resource: { buffer: x } },
      { binding: 5, resource: { buffer: xu } },
      { binding: 6, resource: { buffer: xs } },
    ],
  });
  const steps: { bindGroup: GPUBindGroup; groups: number }[] = [];
  for (const part of m.parts) {
    if (part.rows === 0) continue;
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: makeParams(part.rows, part.firstRow) } },
      { binding: 1, resource: part.view },
      { binding: 2, resource: { buffer: xu } },
      { binding: 3, resource: { buffer: y } },
      { binding: 6, resource: { buffer: xs } },
    ];
    if (opts.bias) entries.push({ binding: 4, resource: { buffer: opts.bias } });
    const bindGroup = device.createBindGroup({
      label: `matvec rows4 ${m.name}`,
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    steps.push({ bindGroup, groups: Math.ceil(part.rows / 4 / workgroupSize) });
  }
  return {
    encode(pass) {
      if (!shared || !holdsX(shared, share!, 0, 1)) {
        pass.setPipeline(copy);
        pass.setBindGroup(0, copyGroup);
        pass.dispatchWorkgroups(Math.ceil(xVec4 / 8 / 64));
        if (shared) holdX(shared, share!, 0, 1);
      }
      pass.setPipeline(pipeline);
      for (const s of steps) {
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(s.groups);
      }
    },
    destroy() {
      for (const u of uniforms) u.destroy();
      if (!shared) {
        xu.destroy();
        xs.destroy();
      }
    },
  };
}
