/**
 * The llvmpipe matmul (matmul_rows4.wgsl): Y (n x rows) = X (n x cols) · Wᵀ for
 * Q4_0 / Q4_K matrices uploaded in the rows4 texture layout (rows4-layout.ts),
 * in tiles of 8 or 16 tokens (`tileTokens`) and chunks of 512 columns (256
 * where a two-step window would not fit workgroup memory, and for an odd tail).
 *
 * Per tile one COPY_X dispatch writes the tile's x (all chunks) into a window
 * buffer, then one dispatch per (chunk, texture) reads its chunk through a
 * uniform binding of that window and adds into Y. Ordering: the window buffer
 * is shared by all tiles and rewritten by the next tile's copy dispatch; that is
 * safe because dispatches in one pass run in order and WebGPU's usage tracking
 * puts a barrier between a dispatch that reads it as uniform and the next one
 * that writes it as storage. What is written at encode time (queue.writeBuffer)
 * lands before the whole submit, so every (tile, chunk, texture) gets its own
 * 256-byte params slot instead of sharing one.
 */
import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import type { Gpu } from "../device.ts";
import { getPipeline } from "../pipelines.ts";
import { type GpuMatrix, type GpuRows4Matrix, weightDefine } from "../weights.ts";
import { rows4LayoutSupports } from "../rows4-layout.ts";
import { type Defines, definesKey, loadWgslSync } from "../wgsl.ts";
import { holdsX, holdX, type XShare } from "./x-windows.ts";

export interface MatMulRows4Options {
  /**
   * Tokens per tile, 1..32: accumulators per invocation. Default: 8 for up to 8
   * tokens, 16 for more.
   */
  tileTokens?: number;
  workgroupSize?: number;
  bias?: GPUBuffer;
  biasOffset?: number;
  accumulate?: boolean;
  yStride?: number;
  yOffset?: number;
  /**
   * Store Y (and read the bias) as vec4s: default when every part's rows and
   * Y offset, the Y stride and the bias offset are multiples of 4.
   */
  yVec4?: boolean;
  /** A shared x window, and the group of products whose x copies it may reuse (x-windows.ts). */
  xShare?: XShare;
}

export interface MatMulRows4Op {
  encode(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
}

const SHADER = new URL("./matmul_rows4.wgsl", import.meta.url);
const SLOT = 256; // minUniformBufferOffsetAlignment
const PARAM_WORDS = 12;
const MAX_TILE = 32;
// Measured on llvmpipe (tests/bench/webgpu-matvec.ts --matmul 8,64): 16-token
// tiles beat 8 by ~15 % at 64 tokens (the dequant is shared by more tokens),
// while 8 tokens in a 16-token tile cost ~30 % more than in an 8-token one.
// 32-token tiles were no faster: their 32 KiB x window fills the L1 cache.
const SMALL_TILE = 8;
const LARGE_TILE = 16;
// Batched decode of a few sequences: an invocation does a whole tile's multiply-adds whatever
// n is, so 2 tokens in an 8-token tile cost 2.7x a 2-token tile, 4 tokens 1.6x a 4-token one
// (a 5632x2048 Q4_0 matrix, interleaved best of 4; a 2-token tile costs one matvec). The
// smallest of these tiles that holds the batch.
const DECODE_TILES = [2, 4, SMALL_TILE];
// Tokens whose accumulators stay in registers while a block is applied: 4 x 4
// rows x 8 lanes = 16 of the 32 AVX-512 registers; 1, 2 and 8 measured slower.
const TOKEN_GROUP = 4;

/** WGSL lines `line(0) .. line(n - 1)`, for the unrolled per-token code. */
function lines(n: number, line: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => line(i)).join("\n  ");
}

/**
 * The fused multiply-adds of one 32-value block for every token: tokens in
 * groups of TOKEN_GROUP, each group's accumulators kept over the whole block.
 */
function applyBody(tile: number, xs: number): string {
  const out: string[] = [];
  for (let t0 = 0; t0 < tile; t0 += TOKEN_GROUP) {
    const group = Array.from({ length: Math.min(TOKEN_GROUP, tile - t0) }, (_, i) => t0 + i);
    for (let v = 0; v < 32; v++) {
      for (const t of group) {
        const x = `XW[xb + ${t * xs + (v >> 2)}u].${"xyzw"[v & 3]}`;
        out.push(`acc${t} = fma(w[${v}], vec4<f32>(${x}), acc${t});`);
      }
    }
  }
  return out.join("\n  ");
}

/** Whether the rows4 matmul handles this type and width: whole 256-value steps per row. */
export function matMulRows4Supports(type: GgmlType, cols: number): boolean {
  return rows4LayoutSupports(type, cols);
}

export function createMatMulRows4(
  gpu: Gpu,
  m: GpuMatrix,
  x: GPUBuffer,
  y: GPUBuffer,
  opts: MatMulRows4Options = {},
): MatMulRows4Op {
  if (!matMulRows4Supports(m.type, m.cols)) {
    throw new Error(
      `matmul rows4: ${ggmlTypeName(m.type)} with ${m.cols} columns is not supported`,
    );
  }
  if (m.layout !== "rows4") {
    throw new Error(`matmul rows4: ${m.name} is in the ${m.layout} layout, upload it as rows4`);
  }
  const r4 = m;
  const fixed = opts.tileTokens;
  if (fixed !== undefined && (!Number.isInteger(fixed) || fixed < 1 || fixed > MAX_TILE)) {
    throw new Error(`matmul rows4: tileTokens ${fixed} is not in 1..${MAX_TILE}`);
  }
  if (fixed !== undefined) return createTiled(gpu, r4, x, y, opts, fixed);
  // Without a fixed tile: the smallest DECODE_TILES tile that holds a batch of a few
  // (batched decode), LARGE_TILE for longer ones (prefill); each built on first use.
  const built = new Map<number, MatMulRows4Op>();
  return {
    encode(pass, n) {
      const tile = DECODE_TILES.find((t) => n <= t) ?? LARGE_TILE;
      let op = built.get(tile);
      if (!op) built.set(tile, op = createTiled(gpu, r4, x, y, opts, tile));
      op.encode(pass, n);
    },
    destroy() {
      for (const op of built.values()) op.destroy();
    },
  };
}

function createTiled(
  gpu: Gpu,
  m: GpuRows4Matrix,
  x: GPUBuffer,
  y: GPUBuffer,
  opts: MatMulRows4Options,
  tile: number,
): MatMulRows4Op {
  const { device } = gpu;
  const wg = opts.workgroupSize ?? 64;
  const parts = m.parts.filter((p) => p.rows > 0);
  const yStride = opts.yStride ?? m.rows;
  const yOffset = opts.yOffset ?? 0;
  const biasOffset = opts.biasOffset ?? 0;
  const aligned = yStride % 4 === 0 && yOffset % 4 === 0 && biasOffset % 4 === 0 &&
    parts.every((p) => p.rows % 4 === 0 && p.firstRow % 4 === 0);
  if (opts.yVec4 && !aligned) {
    throw new Error(`matmul rows4: ${m.name}'s Y layout is not vec4-aligned`);
  }
  const yVec4 = opts.yVec4 ?? aligned;
  // Steps of 256 values per dispatch (see matmul_rows4.wgsl); a last, shorter
  // chunk gets its own pipeline.
  const twoFit = tile * 2 * 64 * 16 <= gpu.limits.maxComputeWorkgroupStorageSize;
  const chunkSteps = Math.min(twoFit ? 2 : 1, m.cols / 256);
  const steps = m.cols / 256;
  const chunks = Math.ceil(steps / chunkSteps);
  const tailSteps = steps - (chunks - 1) * chunkSteps;
  const xs = 64 * chunkSteps; // x vec4s per token in a chunk window
  const windowBytes = tile * xs * 16;
  const pipelineFor = (stepCount: number) => {
    const defines: Defines = {
      [weightDefine(m.type)]: true,
      WG: wg,
      XS: xs,
      XV4: tile * xs,
      TILE: tile,
      ACC_DECLS: lines(tile, (t) => `var<private> acc${t}: vec4<f32>;`),
      APPLY_BODY: applyBody(tile, xs),
      STEP_CALLS: lines(stepCount, (s) => `step(g, P.t_step + ${36 * s}u, ${64 * s}u);`),
      FINISH_CALLS: lines(tile, (t) => `finish4(${t}u, r0, last, acc${t});`),
      BIAS: opts.bias !== undefined,
      Y_VEC4: yVec4,
    };
    const generated = {
      ACC_DECLS: false,
      APPLY_BODY: false,
      STEP_CALLS: false,
      FINISH_CALLS: false,
    };
    return getPipeline(
      device,
      `matmul-rows4|${definesKey({ ...defines, ...generated, STEPS: stepCount })}`,
      () => loadWgslSync(SHADER, defines),
    );
  };
  const pipeline = pipelineFor(chunkSteps);
  const tail = tailSteps === chunkSteps ? pipeline : pipelineFor(tailSteps);
  const copy = getPipeline(
    device,
    `matmul-rows4|COPY_X,TILE=${tile},XS=${xs}`,
    () => loadWgslSync(SHADER, { COPY_X: true, XS: xs, TILE: tile }),
  );
  const share = opts.xShare && m.cols <= opts.xShare.windows.maxCols ? opts.xShare : undefined;
  const shared = share?.windows.window(`matmul-rows4|TILE=${tile},XS=${xs}`, [
    Math.ceil(share.windows.maxCols / 256 / chunkSteps) * windowBytes,
  ]);
  const window = shared?.buffers[0] ?? device.createBuffer({
    label: `matmul x ${m.name}`,
    size: chunks * windowBytes,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM,
  });
  const slotsPerTile = 1 + chunks * parts.length;

  /** Params words of every slot for `tiles` tiles; word 4 (n) is filled at encode time. */
  function paramsFor(tiles: number): Uint32Array<ArrayBuffer> {
    const words = new Uint32Array(tiles * slotsPerTile * SLOT / 4);
    for (let t = 0; t < tiles; t++) {
      let slot = t * slotsPerTile;
      const put = (v: number[]) => words.set(v, (slot++ * SLOT) / 4);
      put([0, 0, 0, t * tile, 0, 0, 0, 0, 0, m.cols / 4, chunks, 0]);
      for (let c = 0; c < chunks; c++) {
        const flags = (c === 0 && opts.bias ? 1 : 0) | (c > 0 || opts.accumulate ? 2 : 0);
        for (const part of parts) {
          put([
            part.rows,
            Math.ceil(part.rows / 4),
            c * chunkSteps * 36,
            t * tile,
            0,
            yOffset + part.firstRow,
            yStride,
            biasOffset + part.firstRow,
            flags,
            0,
            0,
            0,
          ]);
        }
      }
    }
    return words;
  }

  interface Built {
    tiles: number;
    words: Uint32Array<ArrayBuffer>;
    uniform: GPUBuffer;
    copyGroups: GPUBindGroup[];
    groups: GPUBindGroup[][]; // [tile][chunk * parts + part]
  }

  function build(tiles: number): Built {
    const words = paramsFor(tiles);
    const uniform = device.createBuffer({
      label: `matmul params ${m.name}`,
      size: words.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const params = (slot: number) => ({
      buffer: uniform,
      offset: slot * SLOT,
      size: PARAM_WORDS * 4,
    });
    const copyGroups: GPUBindGroup[] = [];
    const groups: GPUBindGroup[][] = [];
    for (let t = 0; t < tiles; t++) {
      let slot = t * slotsPerTile;
      copyGroups.push(device.createBindGroup({
        label: `matmul copy x ${m.name}`,
        layout: copy.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: params(slot++) },
          { binding: 2, resource: { buffer: x } },
          { binding: 5, resource: { buffer: window } },
        ],
      }));
      const row: GPUBindGroup[] = [];
      for (let c = 0; c < chunks; c++) {
        for (const part of parts) {
          const entries: GPUBindGroupEntry[] = [
            { binding: 0, resource: params(slot++) },
            { binding: 1, resource: part.view },
            {
              binding: 2,
              resource: {
                buffer: window,
                offset: c * windowBytes,
                size: windowBytes,
              },
            },
            { binding: 3, resource: { buffer: y } },
          ];
          if (opts.bias) entries.push({ binding: 4, resource: { buffer: opts.bias } });
          row.push(device.createBindGroup({
            label: `matmul rows4 ${m.name}`,
            layout: (c === chunks - 1 ? tail : pipeline).getBindGroupLayout(0),
            entries,
          }));
        }
      }
      groups.push(row);
    }
    return { tiles, words, uniform, copyGroups, groups };
  }

  let built: Built | undefined;
  let lastN = -1;
  const copyGroupsX = Math.ceil((chunks * tile * xs) / 64);
  return {
    encode(pass, n) {
      if (!Number.isInteger(n) || n < 1) throw new Error(`matmul: bad token count ${n}`);
      const tiles = Math.ceil(n / tile);
      if (!built || built.tiles < tiles) {
        built?.uniform.destroy();
        built = build(tiles);
        lastN = -1;
      }
      const b = built;
      if (n !== lastN) {
        for (let s = 0; s < b.tiles * slotsPerTile; s++) b.words[(s * SLOT) / 4 + 4] = n;
        device.queue.writeBuffer(b.uniform, 0, b.words);
        lastN = n;
      }
      // Tiles in order, except that one whose x a shared window already holds goes first.
      const held = shared?.holder?.tile ?? -1;
      const reuse = shared !== undefined && held < tiles && holdsX(shared, share!, held, n);
      const first = reuse ? held : 0;
      for (let i = 0; i < tiles; i++) {
        const t = i === 0 ? first : i <= first ? i - 1 : i;
        if (!(i === 0 && reuse)) {
          pass.setPipeline(copy);
          pass.setBindGroup(0, b.copyGroups[t]);
          pass.dispatchWorkgroups(copyGroupsX);
          if (shared) holdX(shared, share!, t, n);
        }
        for (let c = 0; c < chunks; c++) {
          pass.setPipeline(c === chunks - 1 ? tail : pipeline);
          for (let p = 0; p < parts.length; p++) {
            pass.setBindGroup(0, b.groups[t][c * parts.length + p]);
            pass.dispatchWorkgroups(Math.ceil(parts[p].rows / 4 / wg));
          }
        }
      }
    },
    destroy() {
      built?.uniform.destroy();
      if (!shared) window.destroy();
    },
  };
}
