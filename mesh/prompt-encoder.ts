/**
 * A serving node's prompts to tokens without stalling its event loop. Tokenizing runs at ~1 µs
 * a character here (a 4 MiB prompt took 7 s, while /health and, in `demo`, the relay waited), so:
 * - a plain prompt that cannot fit the context is refused first, in O(1) (prompt.ts);
 * - a short prompt (weight ≤ `inlineWeight`, ~5 ms of work) is encoded right here, as before;
 * - a longer one goes to a worker (prompt-worker.ts) running the same code on a tokenizer built
 *   from the same metadata, so the tokens are identical; the event loop only waits for a message.
 * The worker starts with the first long prompt and ends after `idleMs` without one (it holds a
 * second copy of the vocabulary meanwhile).
 */
import type { GgufValue } from "../inference/mod.ts";
import { checkPromptLength, encodePrompt, type PromptModel, promptWeight } from "./prompt.ts";
import type { PromptJob, PromptReply } from "./prompt-worker.ts";
import { type InferRequest, SERVICE_ERROR_CODES, ServiceError } from "./service.ts";

/** Prompts lighter than this (characters, prompt.ts `promptWeight`) stay on the event loop. */
const INLINE_PROMPT_WEIGHT = 4096;
/** The worker ends after this long without a prompt. */
const PROMPT_WORKER_IDLE_MS = 60_000;

export interface PromptEncoderInit {
  model: PromptModel;
  /** The model's GGUF metadata: the worker builds its tokenizer from the `tokenizer.*` part. */
  metadata: Record<string, GgufValue>;
  inlineWeight?: number;
  idleMs?: number;
}

export interface PromptEncoder {
  /** The prompt's tokens; rejects with a ServiceError (invalid_request, context_length_exceeded). */
  tokens(req: InferRequest): Promise<number[]>;
  /** Ends the worker, if one runs; a later long prompt starts a new one. */
  close(): void;
}

export function createPromptEncoder(init: PromptEncoderInit): PromptEncoder {
  const { model } = init;
  const inlineWeight = init.inlineWeight ?? INLINE_PROMPT_WEIGHT;
  const idleMs = init.idleMs ?? PROMPT_WORKER_IDLE_MS;
  const pending = new Map<number, { resolve(t: number[]): void; reject(e: Error): void }>();
  let worker: Worker | undefined;
  let idle: ReturnType<typeof setTimeout> | undefined;
  let nextId = 0;

  function stop(why: string): void {
    clearTimeout(idle);
    idle = undefined;
    worker?.terminate();
    worker = undefined;
    const failure = new ServiceError("unavailable", why);
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  }

  function start(): Worker {
    const w = new Worker(new URL("./prompt-worker.ts", import.meta.url), { type: "module" });
    w.onmessage = ({ data }: MessageEvent<PromptReply>) => {
      const job = pending.get(data.id);
      if (!job) return;
      pending.delete(data.id);
      if ("tokens" in data) job.resolve(data.tokens);
      else job.reject(errorOf(data.error));
      if (pending.size === 0) {
        // An idle worker must not keep the process alive on its own.
        const timer = setTimeout(() => stop("the prompt worker was idle"), idleMs);
        Deno.unrefTimer(timer);
        idle = timer;
      }
    };
    w.onerror = (e) => {
      e.preventDefault(); // a worker's crash must not take the serving node with it
      stop(`tokenizing the prompt failed: ${e.message}`);
    };
    const job: PromptJob = {
      type: "init",
      metadata: tokenizerMetadata(init.metadata),
      template: model.template,
      ctxSize: model.ctxSize,
    };
    w.postMessage(job);
    return w;
  }

  function viaWorker(req: InferRequest): Promise<number[]> {
    clearTimeout(idle);
    idle = undefined;
    worker ??= start();
    const id = nextId++;
    const job: PromptJob = { type: "encode", id, req };
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker!.postMessage(job);
    });
  }

  return {
    tokens(req) {
      try {
        if (req.messages === undefined && typeof req.prompt === "string") {
          checkPromptLength(model, req.prompt, "prompt");
        }
        if (promptWeight(req) <= inlineWeight) return Promise.resolve(encodePrompt(model, req));
      } catch (err) {
        return Promise.reject(err);
      }
      return viaWorker(req);
    },
    close: () => stop("the prompt encoder was closed"),
  };
}

/** The metadata a tokenizer reads (inference/tokenizer/vocab.ts): no tensors' worth of keys. */
function tokenizerMetadata(all: Record<string, GgufValue>): Record<string, GgufValue> {
  const out: Record<string, GgufValue> = {};
  for (const [key, value] of Object.entries(all)) {
    if (key.startsWith("tokenizer.") || key === "general.name" || key === "general.architecture") {
      out[key] = value;
    }
  }
  return out;
}

function errorOf(e: { code: string; message: string }): Error {
  const code = SERVICE_ERROR_CODES.find((c) => c === e.code);
  return code ? new ServiceError(code, e.message) : new Error(e.message);
}
