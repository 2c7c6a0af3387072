/**
 * A layer's mixture-of-experts feed-forward on the GPU, after its norm (forward.ts runs the
 * norm into scratch xb): the router's product, routing on the device (kernels/moe.ts ROUTE),
 * the chosen experts' gate, up and down products for every (row, choice) pair reading the
 * expert from the device (kernels/moe-matvec.ts, ggml's mul_mat_id), SwiGLU, then the weighted
 * sum into the residual stream (COMBINE), with qwen2moe's shared expert beside. The expert
 * stacks stay on the device and nothing is read back.
 */
import type { ModelConfig } from "../model-config.ts";
import type { Gpu } from "./device.ts";
import type { GpuLayerWeights } from "./load-weights.ts";
import { type GpuScratch, type Product, product, scratchBuffer } from "./forward.ts";
import { createMoeMatMul, createMoeMatVec, type MoeGroups } from "./kernels/moe-matvec.ts";
import { bindMoeCombine, bindMoeGroup, bindMoeRoute, type MoeKernelParams } from "./kernels/moe.ts";
import { bindElementwise, type ElementwiseParams } from "./kernels/elementwise.ts";
import type { BoundKernel } from "./kernels/bound-kernel.ts";
import { bindAddId, bindSwigluOai, type GptOssParams } from "./kernels/gpt-oss.ts";

/** The buffers every MoE layer of a stack shares (one step's rows at most). */
export interface MoeScratch {
  logits: GPUBuffer; // (maxBatch, experts)
  ids: GPUBuffer; // (maxBatch, used) u32
  weights: GPUBuffer; // (maxBatch, used)
  gate: GPUBuffer; // (maxBatch, used, expertFfn)
  up: GPUBuffer;
  down: GPUBuffer; // (maxBatch, used, dim)
  groups: MoeGroups; // each expert's pairs of a prefill step: counts (experts), lists
  shared?: { gate: GPUBuffer; up: GPUBuffer; out: GPUBuffer; scale: GPUBuffer };
}

export function createMoeScratch(device: GPUDevice, config: ModelConfig, maxBatch: number) {
  const { dim } = config;
  const { experts, used, expertFfn, sharedFfn } = config.moe!;
  const make = (floats: number, label: string) => scratchBuffer(device, maxBatch * floats, label);
  const s: MoeScratch = {
    logits: make(experts, "moe logits"),
    ids: make(used, "moe ids"),
    weights: make(used, "moe weights"),
    gate: make(used * expertFfn, "moe gate"),
    up: make(used * expertFfn, "moe up"),
    down: make(used * dim, "moe down"),
    groups: {
      counts: scratchBuffer(device, experts, "moe group counts"),
      lists: make(experts, "moe group lists"),
      maxRows: maxBatch,
    },
  };
  if (sharedFfn !== undefined) {
    s.shared = {
      gate: make(sharedFfn, "moe shared gate"),
      up: make(sharedFfn, "moe shared up"),
      out: make(dim, "moe shared out"),
      scale: make(1, "moe shared scale"),
    };
  }
  return s;
}

export function destroyMoeScratch(s: MoeScratch): void {
  const { shared, groups, ...own } = s;
  for (const b of [...Object.values(own), ...Object.values(shared ?? {})]) b.destroy();
  groups.counts.destroy();
  groups.lists.destroy();
}

/** Whether the GPU engine runs this layer's MoE. */
export function moeLayerSupported(w: GpuLayerWeights): boolean {
  return w.moe !== undefined;
}

export interface MoeLayer {
  /** Records the block for n rows of scratch xb (normed) into scratch hidden. */
  encode(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
}

export function createMoeLayer(
  gpu: Gpu,
  config: ModelConfig,
  w: GpuLayerWeights,
  scratch: GpuScratch,
  s: MoeScratch,
): MoeLayer {
  const { device } = gpu;
  const { dim } = config;
  const moe = config.moe!;
  const { experts, used, expertFfn } = moe;
  const m = w.moe!;
  if (!moeLayerSupported(w)) throw new Error("this layer has no MoE weights");
  const { xb, hidden } = scratch;
  const router = product(gpu, m.router, xb, s.logits, { bias: m.routerBias });
  const sharedIn = s.shared && m.sharedGateInp
    ? { xb, gateInp: m.sharedGateInp, scale: s.shared.scale }
    : undefined;
  const route = bindMoeRoute(device, moe, dim, {
    logits: s.logits,
    ids: s.ids,
    weights: s.weights,
    shared: sharedIn,
  }, { n: 1 });
  // Prefill groups each expert's pairs so its weights are decoded once per tile of them.
  const group = bindMoeGroup(device, moe, s.groups.maxRows, {
    ids: s.ids,
    counts: s.groups.counts,
    lists: s.groups.lists,
  }, { n: 1 });
  /** One expert product both ways, as forward.ts `product`: per pair for 1 row, else grouped. */
  const byPair = (matrix: typeof m.gateExps, x: GPUBuffer, y: GPUBuffer, xPairDiv: number) => {
    const opts = { xPairDiv, xStride: matrix.cols };
    const vec = createMoeMatVec(gpu, matrix, experts, { x, y, ids: s.ids }, opts);
    const mat = createMoeMatMul(gpu, matrix, experts, { x, y, groups: s.groups }, opts);
    return {
      encode: (pass: GPUComputePassEncoder, n: number) =>
        n === 1 ? vec.encode(pass, used) : mat.encode(pass, n),
      destroy: () => (vec.destroy(), mat.destroy()),
    };
  };
  const experts3 = [
    byPair(m.gateExps, xb, s.gate, used),
    byPair(m.upExps, xb, s.up, used),
  ];
  // gpt-oss: each pair's expert bias after its product (ggml_add_id), the clamped swiglu_oai.
  const addId = (a: GPUBuffer, bias: GPUBuffer | undefined, width: number) =>
    bias && { kernel: bindAddId(device, { a, bias, ids: s.ids }, width, { n: width }), width };
  const biases = {
    gate: addId(s.gate, m.gateExpsBias, expertFfn),
    up: addId(s.up, m.upExpsBias, expertFfn),
    down: addId(s.down, m.downExpsBias, dim),
  };
  const swiglu: BoundKernel<ElementwiseParams | GptOssParams> = moe.activation === "swiglu-oai"
    ? bindSwigluOai(device, { a: s.gate, b: s.up }, { n: expertFfn })
    : bindElementwise(device, "swiglu", { a: s.gate, b: s.up }, { n: expertFfn });
  const down = byPair(m.downExps, s.gate, s.down, 1);
  let shared:
    | { gate: Product; up: Product; swiglu: BoundKernel<ElementwiseParams>; down: Product }
    | undefined;
  if (s.shared && m.sharedGate && m.sharedUp && m.sharedDown) {
    shared = {
      gate: product(gpu, m.sharedGate, xb, s.shared.gate, {}),
      up: product(gpu, m.sharedUp, xb, s.shared.up, {}),
      swiglu: bindElementwise(device, "swiglu", { a: s.shared.gate, b: s.shared.up }, {
        n: moe.sharedFfn!,
      }),
      down: product(gpu, m.sharedDown, s.shared.gate, s.shared.out, {}),
    };
  }
  const combine = bindMoeCombine(device, moe, dim, {
    hidden,
    weights: s.weights,
    down: s.down,
    shared: s.shared && shared ? { scale: s.shared.scale, out: s.shared.out } : undefined,
  }, { n: 1 });
  const rows: MoeKernelParams = { n: 1 };
  return {
    encode(pass, n) {
      rows.n = n;
      router.encode(pass, n);
      route.update(rows);
      route.encode(pass);
      if (n > 1) {
        group.update(rows);
        group.encode(pass);
      }
      for (const op of experts3) op.encode(pass, n);
      const bias = (b?: { kernel: BoundKernel<GptOssParams>; width: number }) => {
        b?.kernel.update({ n: n * used * b.width });
        b?.kernel.encode(pass);
      };
      bias(biases.gate);
      bias(biases.up);
      swiglu.update({ n: n * used * expertFfn });
      swiglu.encode(pass);
      down.encode(pass, n);
      bias(biases.down);
      if (shared) {
        shared.gate.encode(pass, n);
        shared.up.encode(pass, n);
        shared.swiglu.update({ n: n * moe.sharedFfn! });
        shared.swiglu.encode(pass);
        shared.down.encode(pass, n);
      }
      combine.update(rows);
      combine.encode(pass);
    },
    destroy() {
      for (const k of [router, route, group, ...experts3, swiglu, down, combine]) k.destroy();
      for (const b of Object.values(biases)) b?.kernel.destroy();
      if (shared) { for (const k of Object.values(shared)) k.destroy(); }
    },
  };
}
