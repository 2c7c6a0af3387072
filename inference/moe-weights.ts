/**
 * The tensors of a mixture-of-experts feed-forward, as llama.cpp names and shapes them
 * (src/llama-model.cpp, qwen2moe / qwen3moe): the router `ffn_gate_inp`, the experts'
 * `ffn_{gate,up,down}_exps` (3-D: [cols, rows, experts] in GGUF dims order, one expert after
 * the other), and qwen2moe's shared expert `ffn_*_shexp` with its scalar gate
 * `ffn_gate_inp_shexp`. Each 3-D tensor is held as one matrix of experts · rows rows, its
 * bytes as stored: expert e's rows are the contiguous [e · rows, (e + 1) · rows).
 */
import type { GgufFile } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import type { TensorPlan } from "./weights.ts";

/** One layer's MoE weights, whatever holds them: M a matrix, V a vector (host or device). */
export interface MoeWeightsOf<M, V> {
  router: M; // (experts, dim)
  routerBias?: V; // (experts)
  gateExps: M; // (experts · expertFfn, dim)
  upExps: M; // (experts · expertFfn, dim)
  downExps: M; // (experts · dim, expertFfn)
  // Per-expert biases (gpt-oss), each expert's after the other: (experts · rows).
  gateExpsBias?: V;
  upExpsBias?: V;
  downExpsBias?: V;
  // The shared expert every token goes through (qwen2moe), scaled by sigmoid(sharedGateInp · x).
  sharedGateInp?: V; // (dim)
  sharedGate?: M; // (sharedFfn, dim)
  sharedUp?: M; // (sharedFfn, dim)
  sharedDown?: M; // (dim, sharedFfn)
}

/** Layer l's MoE tensors, in load order (what planTensors adds for a MoE layer). */
export function planMoeTensors(file: GgufFile, config: ModelConfig, l: number): TensorPlan[] {
  const moe = config.moe!;
  const { dim } = config;
  const { experts, expertFfn, sharedFfn } = moe;
  const p = `blk.${l}.`;
  const plan: TensorPlan[] = [
    { name: p + "ffn_gate_inp.weight", shape: [experts, dim], use: "layer" },
    { name: p + "ffn_gate_exps.weight", shape: [expertFfn, dim], experts, use: "layer" },
    { name: p + "ffn_up_exps.weight", shape: [expertFfn, dim], experts, use: "layer" },
    { name: p + "ffn_down_exps.weight", shape: [dim, expertFfn], experts, use: "layer" },
  ];
  for (const t of ["ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]) {
    const name = `${p}${t}.bias`;
    if (file.tensor(name)) plan.push({ name });
  }
  if (sharedFfn !== undefined) {
    plan.push(
      { name: p + "ffn_gate_inp_shexp.weight" },
      { name: p + "ffn_gate_shexp.weight", shape: [sharedFfn, dim], use: "layer" },
      { name: p + "ffn_up_shexp.weight", shape: [sharedFfn, dim], use: "layer" },
      { name: p + "ffn_down_shexp.weight", shape: [dim, sharedFfn], use: "layer" },
    );
  }
  return plan;
}

/** Layer l's MoE weights by their GGUF names (see layerWeights in weights.ts). */
export function moeLayerWeights<M, V>(
  l: number,
  mat: (name: string) => M,
  vec: (name: string) => V | undefined,
): MoeWeightsOf<M, V> {
  const p = `blk.${l}.`;
  const sharedGateInp = vec(p + "ffn_gate_inp_shexp.weight");
  const w: MoeWeightsOf<M, V> = {
    router: mat(p + "ffn_gate_inp.weight"),
    routerBias: vec(p + "ffn_gate_inp.bias"),
    gateExps: mat(p + "ffn_gate_exps.weight"),
    upExps: mat(p + "ffn_up_exps.weight"),
    downExps: mat(p + "ffn_down_exps.weight"),
    gateExpsBias: vec(p + "ffn_gate_exps.bias"),
    upExpsBias: vec(p + "ffn_up_exps.bias"),
    downExpsBias: vec(p + "ffn_down_exps.bias"),
  };
  if (sharedGateInp !== undefined) {
    Object.assign(w, {
      sharedGateInp,
      sharedGate: mat(p + "ffn_gate_shexp.weight"),
      sharedUp: mat(p + "ffn_up_shexp.weight"),
      sharedDown: mat(p + "ffn_down_shexp.weight"),
    });
  }
  return w;
}
