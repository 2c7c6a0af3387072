/**
 * The one lifecycle shape of the parts a relay or a node is made of, as js-libp2p's components
 * have: a part is built by a factory from its init and the parts it needs, then started and
 * stopped once. A role composes its parts in start order; `startAll` starts them one after
 * another and, when one fails, stops those already started before it rethrows; `stop` stops them
 * in reverse order, each bounded by what it does itself, and a part that fails to stop is
 * logged, never allowed to keep the others running.
 */
import type { Logger } from "./logger.ts";

export interface Startable {
  /** Says what the part is in logs ("relay connection", "libp2p node"). */
  readonly name: string;
  start?(): Promise<void> | void;
  stop(): Promise<void> | void;
}

export interface Composition {
  /** Starts every part in order; on a failure stops the started ones and rethrows. */
  startAll(): Promise<void>;
  /** Stops the started parts in reverse order; idempotent. */
  stop(): Promise<void>;
}

export function compose(parts: readonly Startable[], log: Logger): Composition {
  const started: Startable[] = [];
  let stopping: Promise<void> | undefined;
  async function stopStarted(): Promise<void> {
    for (const part of started.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (err) {
        log.warn(`the ${part.name} failed to stop cleanly: ${(err as Error).message}`);
      }
    }
  }
  return {
    async startAll() {
      for (const part of parts) {
        try {
          await part.start?.();
        } catch (err) {
          await stopStarted();
          throw err;
        }
        started.push(part);
      }
    },
    stop: () => stopping ??= stopStarted(),
  };
}
