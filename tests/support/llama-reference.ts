// Runs llama.cpp itself (the prebuilt CPU build bundled with node-llama-cpp 3.21.1) on a GGUF file
// and records what it predicts, so Grove's own forward pass can be checked against it.
//
// node-llama-cpp exposes no raw logits: its sampler hands back the softmax of the candidate
// logits. With temperature 0 the sampler chain is llama.cpp's greedy sampler alone, which picks
// the argmax and leaves the logits untouched, so ln(probability) is exactly the log-softmax of
// the raw logits (up to float32 rounding, ~1e-7). Compare Grove against these log-probabilities
// by applying log-softmax to Grove's logits; the unknown per-step shift (log-sum-exp) cancels.

import {
  getLlama,
  type Llama,
  type LlamaContextSequence,
  LlamaLogLevel,
  type Token,
} from "node-llama-cpp";

export interface LlamaReferenceOptions {
  promptTokens: number[];
  /** Greedy tokens to generate; generation never stops early, not even on EOS. */
  steps: number;
  /** How many of the most likely tokens to list per step (default 10). */
  topN?: number;
  /** Only 1 is offered: one thread keeps llama.cpp's summation order stable run to run. */
  threads?: 1;
  /**
   * The KV cache's type: F32 (default) for plain-f32 attention, or F16 as llama.cpp's default
   * cache, for checking Grove's own f16 cache against it.
   */
  kvCache?: "F32" | "F16";
}

export interface TokenLogprob {
  id: number;
  /** Natural-log softmax of llama.cpp's raw logit for this token. */
  logprob: number;
}

export interface LlamaReferenceStep {
  /** The greedy (argmax) token chosen at this step. */
  token: number;
  logprob: number;
  /** The topN most likely tokens, most likely first. */
  top: TokenLogprob[];
}

export interface LlamaReferenceResult {
  /** Exactly `steps` greedy tokens following the prompt. */
  tokens: number[];
  steps: LlamaReferenceStep[];
  /** Per step, the full log-softmax over the vocabulary (index = token id). */
  logprobs: Float32Array[];
  llamaVersion: string;
  /** llama.cpp's CPU feature line: results may differ in the last bits between CPU variants. */
  systemInfo: string;
  /** Settings that shape the numbers, recorded so a reader knows what was compared. */
  settings: Record<string, string | number | boolean>;
  timingMs: { init: number; load: number; generate: number };
}

// Attention in plain f32, as Grove's reference does: llama.cpp's defaults (F16 KV cache, flash
// attention on CPU) round K and V to f16, which would blur the comparison.
const CONTEXT_SETTINGS = {
  threads: 1,
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
} as const;

const NODE_LLAMA_CPP_VERSION = "3.21.1";

async function openLlama(): Promise<Llama> {
  // "never" and skipDownload: this machine has no network, and a silent fallback to a source
  // build would take many minutes and change which llama.cpp is being measured.
  return await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    maxThreads: 1,
  });
}

/** Greedy-decodes `steps` tokens after `promptTokens` with llama.cpp and records log-probs. */
export async function llamaReference(
  ggufPath: string,
  options: LlamaReferenceOptions,
): Promise<LlamaReferenceResult> {
  const { promptTokens, steps, topN = 10 } = options;
  if (promptTokens.length === 0) throw new Error("llamaReference: promptTokens is empty");
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`llamaReference: steps must be a positive integer, got ${steps}`);
  }
  if (options.threads !== undefined && options.threads !== 1) {
    throw new Error(`llamaReference: only threads: 1 is supported, got ${options.threads}`);
  }
  const t0 = performance.now();
  const llama = await openLlama();
  const t1 = performance.now();
  try {
    const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 }).catch((e) => {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`llamaReference: llama.cpp could not load ${ggufPath}: ${why}`);
    });
    try {
      const settings = {
        ...CONTEXT_SETTINGS,
        experimentalKvCacheKeyType: options.kvCache ?? "F32",
        experimentalKvCacheValueType: options.kvCache ?? "F32",
      } as const;
      const context = await model.createContext({
        ...settings,
        contextSize: promptTokens.length + steps,
        batchSize: Math.max(promptTokens.length, 1),
        sequences: 1,
      });
      try {
        const t2 = performance.now();
        const decoded = await greedyDecode(context.getSequence(), promptTokens, steps, topN);
        const t3 = performance.now();
        return {
          ...decoded,
          llamaVersion: `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release} ` +
            `(node-llama-cpp ${NODE_LLAMA_CPP_VERSION}, ${llama.buildType})`,
          systemInfo: llama.systemInfo.trim(),
          settings: { ...settings, sampler: "greedy (temperature 0)" },
          timingMs: { init: t1 - t0, load: t2 - t1, generate: t3 - t2 },
        };
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  } finally {
    await llama.dispose();
  }
}

type Decoded = Pick<LlamaReferenceResult, "tokens" | "steps" | "logprobs">;

async function greedyDecode(
  sequence: LlamaContextSequence,
  promptTokens: number[],
  steps: number,
  topN: number,
): Promise<Decoded> {
  // Only the last input token asks for a prediction; temperature 0 selects the greedy sampler
  // with no penalties, top-k/top-p/min-p or token bias (those only join a non-greedy chain).
  const ask = { generateNext: { token: true, probabilities: true, options: { temperature: 0 } } };
  const out: Decoded = { tokens: [], steps: [], logprobs: [] };
  // node-llama-cpp brands token ids; ours are plain numbers checked by llama.cpp itself.
  const prompt = promptTokens as Token[];
  let input: Parameters<LlamaContextSequence["controlledEvaluate"]>[0] = [
    ...prompt.slice(0, -1),
    [prompt[prompt.length - 1], ask],
  ];
  for (let step = 0; step < steps; step++) {
    const results = await sequence.controlledEvaluate(input);
    const next = results[input.length - 1]?.next;
    if (next?.token == null || next.probabilities === undefined) {
      throw new Error(`llamaReference: llama.cpp returned no prediction at step ${step}`);
    }
    const token: number = next.token;
    const logprobs = toLogprobs(next.probabilities);
    const top = [...next.probabilities.keys()].slice(0, topN).map((id) => ({
      id,
      logprob: logprobs[id],
    }));
    // The map comes sorted by logit; a chosen token below the best one would mean sampling crept in.
    if (logprobs[token] < top[0].logprob) {
      throw new Error(`llamaReference: step ${step} picked ${token}, not the argmax ${top[0].id}`);
    }
    out.tokens.push(token);
    out.steps.push({ token, logprob: logprobs[token], top });
    out.logprobs.push(logprobs);
    input = [[next.token, ask]];
  }
  return out;
}

function toLogprobs(probabilities: Map<number, number>): Float32Array {
  let vocabSize = 0;
  for (const id of probabilities.keys()) vocabSize = Math.max(vocabSize, id + 1);
  if (probabilities.size !== vocabSize) {
    throw new Error(
      `llamaReference: expected probabilities for all ${vocabSize} tokens, got ${probabilities.size}`,
    );
  }
  const logprobs = new Float32Array(vocabSize);
  for (const [id, p] of probabilities) logprobs[id] = Math.log(p);
  return logprobs;
}
