/**
 * The listeners of one kind of news (a mesh status, a member list, a ticket): each is told in
 * turn, and one that throws is logged, never allowed to keep the others from hearing it.
 */
import type { Logger } from "../protocol/mod.ts";

export interface Listeners<T> {
  /** Adds `fn`, telling it `latest` at once when there is one; returns its removal. */
  add(fn: (value: T) => void, latest?: T): () => void;
  emit(value: T): void;
}

/** `what` names the news in the log line of a listener that failed ("relay", "ticket"). */
export function listeners<T>(what: string, log: Logger): Listeners<T> {
  const fns = new Set<(value: T) => void>();
  return {
    add(fn, latest) {
      fns.add(fn);
      if (latest !== undefined) fn(latest);
      return () => void fns.delete(fn);
    },
    emit(value) {
      for (const fn of fns) {
        try {
          fn(value);
        } catch (err) {
          log.error(`a ${what} listener failed: ${(err as Error).message}`);
        }
      }
    },
  };
}
