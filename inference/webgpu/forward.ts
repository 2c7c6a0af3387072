/**
 * The GPU forward pass: the same steps (and comments) as
 * inference/reference.ts, recorded as kernel dispatches into one compute pass
 * per evaluation. Every kernel is bound once per session to buffers allocated
 * once (scratch sized for `maxBatch` tokens, the KV cache for `ctxSize`), so
 * a decode step only rewrites a few uniforms, records and submits; nothing is
 * read back between ops.
 */
import type { ModelConfig } from "../model-config.ts";
import type { Gpu } from "./device.ts";
import type { GpuMatrix } from "./weights.ts";
import type { GpuLayerWeights, GpuModelWeights } from "./load-weights.ts";
import type { BoundKernel } from "./kernels/bound-kernel.ts";
import { createMatVec, type MatVecOptions } from "./kernels/matvec.ts";
import { createMatMul } from "./kernels/matmul.ts";
import { createXWindows, type XGroup, type XWindows } from "./kernels/x-windows.ts";
import { bindRowNorm, type RowNormParams } from "./kernels/row_norm.ts";
import { bindRope } from "./kernels/rope.ts";
import {
  bindAttention,
  bindKvWrite,
  createKvCache,
  defaultAttentionLayout,
  destroyKvCache,
} from "./kernels/attention.ts";
import { bindElementwise, type ElementwiseParams } from "./kernels/elementwise.ts";
import { bindEmbed } from "./kernels/embed.ts";
import { bindArgmax } from "./kernels/argmax.ts";
import { layerAttention, layerRope } from "./gemma3.ts";
import { ringRowsOf, ringTrackOf } from "./ring-cache.ts";
import { type RingTrack, ringWrote } from "../swa-cache.ts";
import { createMoeLayer, createMoeScratch, destroyMoeScratch } from "./moe-layer.ts";
import {
  createGatedQuery,
  createHybridScratch,
  createLinearLayer,
  createRecurrentStates,
  destroyHybridScratch,
  hybridRowFloats,
  type RecurrentStates,
} from "./hybrid-layer.ts";

const SCRATCH = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
/** Prefill chunk: big enough to read each weight once per many tokens, small enough to bind. */
const MAX_BATCH = 64;

export function scratchBuffer(device: GPUDevice, floats: number, label: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, floats * 4), usage: SCRATCH });
}

/** Tokens per submit: MAX_BATCH, fewer when the widest scratch row would pass the binding limit. */
export function maxBatchFor(gpu: Gpu, config: ModelConfig, ctxSize: number): number {
  const { dim, heads, kvHeads, headDim, valueDim, ffn } = config;
  const moe = config.moe ? config.moe.used * Math.max(dim, config.moe.expertFfn) : 0;
  const widest = Math.max(
    dim,
    heads * headDim,
    heads * valueDim,
    kvHeads * headDim,
    ffn,
    moe,
    hybridRowFloats(config), // qwen35moe
  ) * 4;
  const fit = Math.floor(gpu.limits.maxStorageBufferBindingSize / widest);
  if (fit < 1) throw new Error(`one token's ${widest / 4} activations exceed the binding limit`);
  return Math.max(1, Math.min(MAX_BATCH, ctxSize, fit));
}

/** One weight product, prebuilt both ways: matvec for a single token, matmul for a batch. */
export interface Product {
  encode(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
  /** The products that read its x copy (x-windows.ts): its own group, or the one it joined. */
  group: XGroup;
  x: GPUBuffer;
  cols: number;
}

export interface ProductOptions extends Pick<MatVecOptions, "bias" | "accumulate"> {
  /** The layer stack's shared x windows (x-windows.ts). */
  windows?: XWindows;
  /**
   * The product encoded just before this one, on the same x, with nothing writing x between
   * them (k and v after q, up after gate): this one joins its group and may reuse its x copy.
   */
  after?: Product;
}

export function product(
  gpu: Gpu,
  m: GpuMatrix,
  x: GPUBuffer,
  y: GPUBuffer,
  opts: ProductOptions,
): Product {
  const { after, windows, ...rest } = opts;
  if (after && (after.x !== x || after.cols !== m.cols)) {
    throw new Error(`product ${m.name}: it does not read the x of the product it follows`);
  }
  const group = after?.group ?? { generation: 0 };
  const xShare = windows && { windows, group };
  const vec = createMatVec(gpu, m, x, y, { ...rest, xShare });
  const mat = createMatMul(gpu, m, x, y, { ...rest, xShare });
  return {
    encode(pass, n) {
      // The group's first product: x has been written since the group last read it.
      if (!after) group.generation++;
      if (n === 1) vec.encode(pass);
      else mat.encode(pass, n);
    },
    destroy: () => (vec.destroy(), mat.destroy()),
    group,
    x,
    cols: m.cols,
  };
}

/** Per-sequence scratch of the layers, allocated once (reference.ts allocates per call). */
export interface GpuScratch {
  maxBatch: number;
  hidden: GPUBuffer; // (maxBatch, dim) the residual stream, in and out of a layer range
  xb: GPUBuffer; // (maxBatch, dim) normed input of a sub-block
  q: GPUBuffer; // (maxBatch, heads*headDim)
  k: GPUBuffer; // (maxBatch, kvHeads*headDim)
  v: GPUBuffer; // (maxBatch, kvHeads*valueDim)
  att: GPUBuffer; // (maxBatch, heads*valueDim) attention output before wo
  gate: GPUBuffer; // (maxBatch, ffn)
  up: GPUBuffer; // (maxBatch, ffn)
  proj: GPUBuffer; // (maxBatch, dim) a block's output before its post-norm (gemma3)
}

export function createScratch(
  device: GPUDevice,
  config: ModelConfig,
  maxBatch: number,
): GpuScratch {
  const { dim, heads, kvHeads, headDim, valueDim, ffn } = config;
  const make = (width: number, label: string) => scratchBuffer(device, maxBatch * width, label);
  return {
    maxBatch,
    hidden: make(dim, "hidden"),
    xb: make(dim, "xb"),
    q: make(heads * headDim, "q"),
    k: make(kvHeads * headDim, "k"),
    v: make(kvHeads * valueDim, "v"),
    att: make(heads * valueDim, "att"),
    gate: make(ffn, "gate"),
    up: make(ffn, "up"),
    proj: make(dim, "proj"),
  };
}

/** A kernel whose dispatch depends on where the step's rows sit (n rows, first at pos0). */
export interface Placed {
  encode(pass: GPUComputePassEncoder, n: number, pos0: number): void;
  destroy(): void;
}

/** `kernel`, its params rewritten from (n, pos0) before each dispatch. */
export function placed<P>(kernel: BoundKernel<P>, params: (n: number, pos0: number) => P): Placed {
  return {
    encode(pass, n, pos0) {
      kernel.update(params(n, pos0));
      kernel.encode(pass);
    },
    destroy: () => kernel.destroy(),
  };
}

/**
 * The position-dependent kernels of a layer (RoPE, the cache write,
 * attention) and the KV cache they share. Two placements exist: one sequence
 * at positions pos0.. (sequencePlacement), and stacked rows of several
 * sequences that each carry their own (slot, position) (batch-forward.ts).
 */
export interface Placement {
  /** Throws when n rows at pos0 do not fit; else they are about to be written. */
  check(n: number, pos0: number): void;
  /** One sequence's sliding-window rings: how far back a rewind finds its window. */
  ring?: RingTrack;
  /** Rotates `heads` heads of every row of `v` by its position, as layer `layer` does. */
  rope(v: GPUBuffer, heads: number, layer: number): Placed;
  /** Appends the rows of scratch k and v to layer `layer`'s cache. */
  kvWrite(layer: number): Placed;
  /** Attention of the rows of scratch q over layer `layer`'s cache, into scratch att. */
  attention(layer: number): Placed;
  /** qwen35moe: the linear layers' recurrent states, per slot (hybrid-layer.ts). */
  recurrent?: RecurrentStates;
  destroy(): void;
}

/** One sequence: row t at position pos0 + t, a KV cache of `ctxSize` positions. */
export function sequencePlacement(
  gpu: Gpu,
  config: ModelConfig,
  weights: GpuModelWeights,
  ctxSize: number,
  scratch: GpuScratch,
): Placement {
  const { device } = gpu;
  const { heads, kvHeads, headDim, valueDim } = config;
  const { q, k, v, att } = scratch;
  const cached = weights.layers.map((w) => !w.linear); // qwen35moe's linear layers keep none
  const layers = weights.layers.length;
  const rings = ringRowsOf(config, weights.layerStart, layers, ctxSize, scratch.maxBatch);
  const ring = ringTrackOf(config, rings);
  const rows = rings.map((r) => r || ctxSize);
  const kv = createKvCache(device, { ...config, layers, ctxSize, cached, rows });
  const recurrent = createRecurrentStates(gpu, config, weights.layerStart, weights.layerEnd, 1);
  const rope = { n: 1, headDim, ropeDim: config.ropeDim, pos0: 0 };
  const attnShape = { heads, kvHeads, headDim, valueDim, pos0: 0, n: 1 };
  const kvShape = { kDim: kv.kDim, vDim: kv.vDim, pos0: 0, n: 1 };
  return {
    check(n, pos0) {
      if (pos0 + n > ctxSize) {
        throw new Error(
          `context full: ${pos0} + ${n} positions exceed the context size ${ctxSize}`,
        );
      }
      ringWrote(ring, pos0 + n);
    },
    ring,
    rope: (x, h, li) => {
      const { table, ropeScale } = layerRope(config, weights, li);
      return placed(
        bindRope(device, config.ropeStyle, { v: x, table }, { ...rope, ropeScale, heads: h }),
        (n, pos0) => ({ ...rope, ropeScale, heads: h, n, pos0 }),
      );
    },
    kvWrite: (li) =>
      placed(
        bindKvWrite(device, { k, v, keys: kv.keys[li], values: kv.values[li] }, {
          ...kvShape,
          ring: rings[li],
        }),
        (n, pos0) => ({ ...kvShape, n, pos0, ring: rings[li] }),
      ),
    attention: (li) => {
      const shape = { ...attnShape, ...layerAttention(config, weights, li), ring: rings[li] };
      return placed(
        bindAttention(
          device,
          {
            q,
            keys: kv.keys[li],
            values: kv.values[li],
            out: att,
            sinks: weights.layers[li].sinks,
          },
          shape,
          defaultAttentionLayout(gpu),
        ),
        (n, pos0) => ({ ...shape, n, pos0 }),
      );
    },
    recurrent,
    destroy: () => (destroyKvCache(kv), recurrent?.destroy()),
  };
}

/** The layers of one sequence (an engine session, a stage session). */
export function sequenceStack(
  gpu: Gpu,
  config: ModelConfig,
  weights: GpuModelWeights,
  ctxSize: number,
  scratch: GpuScratch,
): LayerStack {
  const placement = sequencePlacement(gpu, config, weights, ctxSize, scratch);
  return createLayerStack(gpu, config, weights, scratch, placement);
}

export interface LayerStack {
  scratch: GpuScratch;
  /** Records this range's layers for n ≤ maxBatch rows of `scratch.hidden`, the first at pos0. */
  encode(pass: GPUComputePassEncoder, n: number, pos0: number): void;
  /** qwen35moe: zeroes slot `slot`'s recurrent state (a new sequence, a rewind to 0). */
  clearRecurrent(slot: number): void;
  /** One sequence's sliding-window rings (sequenceStack): rewinds check them (swa-cache.ts). */
  ring?: RingTrack;
  destroy(): void;
}

/**
 * The layers of `weights` bound to a session's scratch and a placement of its
 * rows. `encode` rewrites uniforms with queue.writeBuffer, so a stack is
 * encoded at most once per submit.
 */
export function createLayerStack(
  gpu: Gpu,
  config: ModelConfig,
  weights: GpuModelWeights,
  scratch: GpuScratch,
  placement: Placement,
): LayerStack {
  const { device } = gpu;
  const { dim, heads, kvHeads, headDim, ffn, normEps: eps } = config;
  const { hidden, xb, q, k, v, att, gate, up, proj } = scratch;
  // One x window per shape for all the stack's products (x-windows.ts): wide enough for the
  // widest x, which is ffn for the down projection.
  const windows = createXWindows(device, Math.max(dim, heads * config.valueDim, ffn));
  const shared = (opts: ProductOptions = {}): ProductOptions => ({ ...opts, windows });
  const norm = (x: GPUBuffer, w: GPUBuffer, out: GPUBuffer | undefined, n: number) =>
    bindRowNorm(device, { x, weight: w, out }, { n, rows: 1, eps });
  const moeScratch = config.moe && createMoeScratch(device, config, scratch.maxBatch);

  // gemma3: a block's output goes to proj, is RMS-normed there and then added to the residual.
  const postAdd = (weight: GPUBuffer | undefined) =>
    weight && bindElementwise(device, "add", { a: hidden, b: proj }, { n: dim });

  // qwen35moe: gated delta net layers (their states in the placement) and gated attention.
  const hybrid = config.recurrent && createHybridScratch(device, config, scratch.maxBatch);
  const gated = config.attnOutputGate && hybrid
    ? createGatedQuery(device, config, scratch, hybrid)
    : undefined;
  const linearOf = (w: GpuLayerWeights, li: number) => {
    const state = placement.recurrent?.layers[li];
    if (!hybrid || !state) throw new Error(`layer ${weights.layerStart + li} has no state`);
    return createLinearLayer(gpu, config, w, scratch, hybrid, state, placement.recurrent!.rows);
  };

  // A full-attention layer's kernels; a linear-attention layer has `linear` instead.
  const attentionOf = (w: GpuLayerWeights, li: number) => {
    // k and v read the x that q read, right after it (gated.split between writes only q).
    const wq = product(gpu, w.wq, xb, gated ? hybrid!.qg : q, shared({ bias: w.bq }));
    const wk = product(gpu, w.wk, xb, k, shared({ bias: w.bk, after: wq }));
    const wv = product(gpu, w.wv, xb, v, shared({ bias: w.bv, after: wk }));
    return { attnNorm: norm(hidden, w.attnNorm, xb, dim), wq, wk, wv, ...attentionRest(w, li) };
  };
  const attentionRest = (w: GpuLayerWeights, li: number) => ({
    qNorm: w.qNorm && norm(q, w.qNorm, undefined, headDim),
    kNorm: w.kNorm && norm(k, w.kNorm, undefined, headDim),
    ropeQ: placement.rope(q, heads, li),
    ropeK: placement.rope(k, kvHeads, li),
    kvWrite: placement.kvWrite(li),
    attention: placement.attention(li),
    wo: product(
      gpu,
      w.wo,
      att,
      w.attnPostNorm ? proj : hidden,
      shared({ accumulate: !w.attnPostNorm, bias: w.bo }), // bias: gpt-oss
    ),
    attnPostNorm: w.attnPostNorm && norm(proj, w.attnPostNorm, undefined, dim),
    attnPostAdd: postAdd(w.attnPostNorm),
  });

  // up reads the x that gate read, right after it.
  const ffnOf = (w: GpuLayerWeights) => {
    const wGate = w.wGate && product(gpu, w.wGate, xb, gate, shared());
    const wUp = w.wUp && product(gpu, w.wUp, xb, up, shared({ after: wGate }));
    return { wGate, wUp };
  };

  const layers = weights.layers.map((w, li) => ({
    attn: w.linear ? undefined : attentionOf(w, li),
    linear: w.linear ? linearOf(w, li) : undefined,
    ffnNorm: norm(hidden, w.ffnNorm, xb, dim),
    moe: w.moe && moeScratch ? createMoeLayer(gpu, config, w, scratch, moeScratch) : undefined,
    ...ffnOf(w),
    swiglu: bindElementwise(device, config.activation === "gelu" ? "geglu" : "swiglu", {
      a: gate,
      b: up,
    }, { n: ffn }),
    wDown: w.wDown && product(
      gpu,
      w.wDown,
      gate,
      w.ffnPostNorm ? proj : hidden,
      shared({
        accumulate: !w.ffnPostNorm,
      }),
    ),
    ffnPostNorm: w.ffnPostNorm && norm(proj, w.ffnPostNorm, undefined, dim),
    ffnPostAdd: postAdd(w.ffnPostNorm),
  }));

  return {
    scratch,
    encode(pass, n, pos0) {
      if (n < 1 || n > scratch.maxBatch) {
        throw new Error(`layer stack: ${n} tokens, the scratch holds ${scratch.maxBatch}`);
      }
      placement.check(n, pos0);
      // gemma3's post-norm of a block's output in proj, then the residual add.
      const post = (norm?: BoundKernel<RowNormParams>, add?: BoundKernel<ElementwiseParams>) => {
        norm?.update({ n: dim, rows: n, eps });
        norm?.encode(pass);
        add?.update({ n: n * dim });
        add?.encode(pass);
      };
      for (const L of layers) {
        // qwen35moe's gated delta net: norm to residual (hybrid-layer.ts)
        if (L.linear) L.linear.encode(pass, n);
        else {
          const A = L.attn!;
          // attention: norm, project to q k v (+ biases for qwen2, fused into the product)
          A.attnNorm.update({ n: dim, rows: n, eps });
          A.attnNorm.encode(pass);
          A.wq.encode(pass, n);
          gated?.split(pass, n); // qwen35moe: W_q gave queries and output gates
          A.wk.encode(pass, n);
          A.wv.encode(pass, n);

          // per-head norm of queries and keys (qwen3), then rotate by position
          A.qNorm?.update({ n: headDim, rows: n * heads, eps });
          A.qNorm?.encode(pass);
          A.kNorm?.update({ n: headDim, rows: n * kvHeads, eps });
          A.kNorm?.encode(pass);
          A.ropeQ.encode(pass, n, pos0);
          A.ropeK.encode(pass, n, pos0);
          A.kvWrite.encode(pass, n, pos0);

          // causal multi-head attention over the cache; query head h reads kv head h / group
          A.attention.encode(pass, n, pos0);
          gated?.gate(pass, n);
          A.wo.encode(pass, n); // hidden += wo · att (residual fused), or gemma3's post-norm
          post(A.attnPostNorm, A.attnPostAdd);
        }

        // feed-forward: norm, SwiGLU, down, residual
        L.ffnNorm.update({ n: dim, rows: n, eps });
        L.ffnNorm.encode(pass);
        if (L.moe) L.moe.encode(pass, n); // routed experts (moe-layer.ts), residual fused
        else {
          L.wGate!.encode(pass, n);
          L.wUp!.encode(pass, n);
          L.swiglu.update({ n: n * ffn });
          L.swiglu.encode(pass);
          L.wDown!.encode(pass, n); // hidden += wDown · swiglu (residual fused), or post-norm
          post(L.ffnPostNorm, L.ffnPostAdd);
        }
      }
    },
    clearRecurrent: (slot) => placement.recurrent?.clear(slot),
    ring: placement.ring,
    destroy() {
      for (const L of layers) {
        const { attn, ...rest } = L;
        for (const part of [...Object.values(attn ?? {}), ...Object.values(rest)]) {
          (part as { destroy(): void } | undefined)?.destroy();
        }
      }
      gated?.destroy();
      windows.destroy();
      placement.destroy();
      if (moeScratch) destroyMoeScratch(moeScratch);
      if (hybrid) destroyHybridScratch(hybrid);
    },
  };
}

/**
 * Entry of the network: rows of the token embedding for the ids in `ids` (u32), times gemma3's
 * embedding scale where the model has one (as reference.ts embedTokens).
 */
export function createEmbedder(
  device: GPUDevice,
  weights: GpuModelWeights,
  ids: GPUBuffer,
  hidden: GPUBuffer,
): BoundKernel<{ n: number }> {
  if (!weights.tokenEmbedding) {
    throw new Error("this engine does not hold the token embedding (not the first stage)");
  }
  const embed = bindEmbed(device, weights.tokenEmbedding, { ids, out: hidden }, { n: 1 });
  const scale = weights.embedScale;
  if (scale === undefined) return embed;
  const dim = weights.tokenEmbedding.cols;
  const scaled = bindElementwise(device, "scale", { a: hidden }, { n: dim, scale });
  return {
    encode(pass) {
      embed.encode(pass);
      scaled.encode(pass);
    },
    update(p) {
      embed.update(p);
      scaled.update({ n: p.n * dim, scale });
    },
    destroy() {
      embed.destroy();
      scaled.destroy();
    },
  };
}

export interface Head {
  logits: GPUBuffer; // (vocab)
  pick: GPUBuffer; // (1) u32 argmax of logits
  /** Records final norm of row `row` of `hidden`, the head, and (greedy) the argmax. */
  encode(pass: GPUComputePassEncoder, row: number, greedy: boolean): void;
  destroy(): void;
}

/** Exit of the network: final norm, then the head, reading a row of `hidden`. */
export function createHead(
  gpu: Gpu,
  config: ModelConfig,
  weights: GpuModelWeights,
  hidden: GPUBuffer,
): Head {
  if (!weights.output || !weights.outputNorm) {
    throw new Error("this engine does not hold the output head (not the last stage)");
  }
  const { device } = gpu;
  const { dim, vocabSize, normEps: eps } = config;
  const x = scratchBuffer(device, dim, "head x");
  const logits = scratchBuffer(device, vocabSize, "logits");
  const pick = scratchBuffer(device, 1, "pick");
  const norm = bindRowNorm(device, { x: hidden, weight: weights.outputNorm, out: x }, {
    n: dim,
    rows: 1,
    eps,
  });
  const head = createMatVec(gpu, weights.output, x, logits);
  const argmax = bindArgmax(device, { logits, ids: pick }, { n: vocabSize });
  const softcap = logitSoftcap(device, config, logits, vocabSize);
  return {
    logits,
    pick,
    encode(pass, row, greedy) {
      norm.update({ n: dim, rows: 1, eps, xOffset: row * dim });
      norm.encode(pass);
      head.encode(pass);
      softcap?.encode(pass);
      if (greedy) argmax.encode(pass);
    },
    destroy() {
      for (const k of [norm, head, argmax, softcap]) k?.destroy();
      for (const b of [x, logits, pick]) b.destroy();
    },
  };
}

/** Final logit soft-capping of `n` logits, where the model has it (reference.ts softcap). */
export function logitSoftcap(
  device: GPUDevice,
  config: ModelConfig,
  logits: GPUBuffer,
  n: number,
): BoundKernel<ElementwiseParams> | undefined {
  const cap = config.logitSoftcap;
  return cap === undefined
    ? undefined
    : bindElementwise(device, "softcap", { a: logits }, { n, scale: cap });
}

/** A reusable staging buffer: copy into it at the end of an encoder, read after the submit. */
/**
 * A readback buffer made on first use and remade larger when a read needs more, so memory is
 * spent only on the sizes asked for (decodeAhead's steps × rows × vocabulary).
 */
export function createGrowingReader(device: GPUDevice, label: string) {
  let staging: GPUBuffer | undefined;
  return {
    /** The buffer to copy into, at least `bytes` long; what an earlier one held is gone. */
    reserve(bytes: number): GPUBuffer {
      const size = Math.max(16, Math.ceil(bytes / 4) * 4);
      if (!staging || staging.size < size) {
        staging?.destroy();
        staging = device.createBuffer({
          label: `${label} readback`,
          size,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        });
      }
      return staging;
    },
    async read(bytes: number): Promise<ArrayBuffer> {
      if (!staging) throw new Error(`${label}: nothing was copied to read`);
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
      const out = staging.getMappedRange(0, bytes).slice(0);
      staging.unmap();
      return out;
    },
    destroy: () => staging?.destroy(),
  };
}

export function createReader(device: GPUDevice, maxBytes: number, label: string) {
  const reader = createGrowingReader(device, label);
  const staging = reader.reserve(maxBytes);
  return {
    copy(enc: GPUCommandEncoder, src: GPUBuffer, bytes: number, srcOffset = 0) {
      enc.copyBufferToBuffer(src, srcOffset, staging, 0, bytes);
    },
    read: reader.read,
    destroy: reader.destroy,
  };
}
