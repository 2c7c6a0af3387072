/**
 * The context a model runs at when not told: its own trained length where memory allows, else
 * the largest multiple of 256 tokens that fits the budget, and a sentence saying which and why
 * (for the node's log). `--ctx-size` overrides it.
 */
import type { GgufFile } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import { modelShapeOf, wholeModelBytes } from "./model-shape.ts";

/** Contexts are chosen in whole steps of this many tokens. */
export const CONTEXT_STEP = 256;
/** Below this (or the model's own, if shorter) a smaller context is not chosen to fit. */
export const CONTEXT_FLOOR = 4096;

export interface ContextChoice {
  ctxSize: number;
  /** Why: the model's own, what it would need and the budget it was fitted to. */
  reason: string;
}

export interface ContextBudget {
  bytes: number;
  /** Where the budget comes from, in words ("--max-memory", "the memory available"). */
  source: string;
}

/**
 * The WebGPU engine's default: it allocates the KV cache of every slot for the whole context up
 * front and cannot see how much memory the GPU has, so it stays at the floor unless told.
 */
export function gpuContextSize(config: ModelConfig): ContextChoice {
  const ctxSize = Math.min(config.contextLength, CONTEXT_FLOOR);
  return {
    ctxSize,
    reason: ctxSize === config.contextLength
      ? "the model's own length"
      : `at most ${CONTEXT_FLOOR} on the GPU, which holds every slot's cache for the whole ` +
        `context from the start (the model's own is ${config.contextLength}; --ctx-size sets more)`,
  };
}

/** The memory this machine has available now: the budget when none is given. */
export function availableMemory(): ContextBudget {
  return { bytes: Deno.systemMemoryInfo().available, source: "this machine's available memory" };
}

function mib(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/**
 * The context for `file`'s model within `budget`. The whole model's need grows with the context
 * (KV cache and per-slot scores), linearly but for sliding-window layers, whose rings stop
 * growing at their window (swa-cache.ts), so the largest fitting multiple of 256 is searched
 * for. Where even the floor does not fit whole, the model is split across nodes by its layers
 * anyway: the floor is kept and the split plans for it.
 */
export function chooseContextSize(
  file: GgufFile,
  config: ModelConfig,
  budget: ContextBudget,
  kvType: "f16" | "f32" = "f16",
): ContextChoice {
  const own = config.contextLength;
  const need = (ctx: number) => wholeModelBytes(modelShapeOf(file, config, ctx, kvType));
  const full = need(own);
  if (full <= budget.bytes) {
    return {
      ctxSize: own,
      reason: `the model's own length, within ${budget.source} (${mib(budget.bytes)})`,
    };
  }
  const floor = Math.min(own, CONTEXT_FLOOR);
  // The most steps whose need fits: the need never shrinks as the context grows.
  let lo = 0, hi = Math.floor(own / CONTEXT_STEP);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (need(mid * CONTEXT_STEP) <= budget.bytes) lo = mid;
    else hi = mid - 1;
  }
  const fits = lo * CONTEXT_STEP;
  const over = `at its own ${own} tokens the model would need ${mib(full)}, over ` +
    `${budget.source} (${mib(budget.bytes)})`;
  if (fits < floor) {
    return {
      ctxSize: floor,
      reason: `${over}, and does not fit whole even at ${floor} tokens: ${floor} is kept`,
    };
  }
  return {
    ctxSize: fits,
    reason: `${over}; ${fits} tokens is the largest multiple of ${CONTEXT_STEP} that fits ` +
      `(${mib(need(fits))})`,
  };
}
