/**
 * The door between callers and one runtime's service: it counts the requests inside, and a
 * stopping runtime closes it. Closed, it turns new requests away with its message; `drain` waits
 * for those inside to finish, and past the deadline ends them with a clear error (an `error`
 * event for a stream, a rejection otherwise) so no caller is left with an answer cut short
 * without a word.
 */
import { type InferenceService, type InferEvent, ServiceError } from "../mesh/mod.ts";

export interface Gate {
  /** The service behind the door: same methods, counted and closable. */
  wrap<S extends InferenceService>(service: S): S;
  /** Closed: new requests are refused with ServiceError("unavailable", message). */
  close(message: string): void;
  isOpen(): boolean;
  /** Requests inside now. */
  inFlight(): number;
  /**
   * Waits up to `ms` for the requests inside to finish; those still running are then ended
   * with `endMessage` (their streams get it as an `error` event). Resolves once none is inside
   * or `settleMs` after ending them, whichever comes first.
   */
  drain(ms: number, endMessage: string, settleMs?: number): Promise<void>;
}

export function createGate(): Gate {
  let closedWith: string | undefined;
  let endedWith: string | undefined;
  const inside = new Set<AbortController>();
  let emptied: (() => void) | undefined;

  const enter = (signal: AbortSignal): AbortController => {
    if (closedWith !== undefined) throw new ServiceError("unavailable", closedWith);
    const controller = new AbortController();
    if (signal.aborted) controller.abort();
    else signal.addEventListener("abort", () => controller.abort(), { once: true });
    inside.add(controller);
    return controller;
  };
  const leave = (controller: AbortController) => {
    inside.delete(controller);
    if (inside.size === 0) emptied?.();
  };
  const ended = (controller: AbortController) =>
    endedWith !== undefined && controller.signal.aborted;

  async function* gatedInfer(
    service: InferenceService,
    req: Parameters<InferenceService["infer"]>[0],
    signal: AbortSignal,
  ): AsyncGenerator<InferEvent> {
    const controller = enter(signal);
    let finished = false;
    try {
      for await (const event of service.infer(req, controller.signal)) {
        // A consumer that came back after the drain's deadline gets the reason, not more tokens.
        if (ended(controller)) break;
        finished = event.type === "done" || event.type === "error";
        yield event;
        if (finished) return;
        if (ended(controller)) break;
      }
      if (!finished && ended(controller) && !signal.aborted) {
        yield { type: "error", code: "unavailable", message: endedWith! };
      }
    } finally {
      leave(controller);
    }
  }

  async function counted<T>(signal: AbortSignal, run: (s: AbortSignal) => Promise<T>) {
    const controller = enter(signal);
    try {
      return await run(controller.signal);
    } catch (err) {
      if (ended(controller)) throw new ServiceError("unavailable", endedWith!);
      throw err;
    } finally {
      leave(controller);
    }
  }

  return {
    wrap(service) {
      const wrapped = {
        ...service,
        models: () => {
          if (closedWith !== undefined) {
            return Promise.reject(new ServiceError("unavailable", closedWith));
          }
          return service.models();
        },
        infer: (req, signal) => gatedInfer(service, req, signal),
      } as typeof service;
      const { embed, tokenizer } = service;
      if (embed) wrapped.embed = (req, signal) => counted(signal, (s) => embed(req, s));
      if (tokenizer) {
        wrapped.tokenizer = (req, signal) => counted(signal, (s) => tokenizer(req, s));
      }
      return wrapped;
    },
    close(message) {
      closedWith ??= message;
    },
    isOpen: () => closedWith === undefined,
    inFlight: () => inside.size,
    async drain(ms, endMessage, settleMs = 1000) {
      const empty = () =>
        new Promise<void>((resolve) => {
          if (inside.size === 0) return resolve();
          emptied = resolve;
        });
      if (await within(empty(), ms)) return;
      endedWith = endMessage;
      for (const controller of inside) controller.abort();
      // A stream whose reader stopped reading never comes back to leave: do not wait for it.
      await within(empty(), settleMs);
    },
  };
}

/** Whether `p` settled within `ms`. */
async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
