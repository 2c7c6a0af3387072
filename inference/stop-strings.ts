/**
 * Stop strings over streamed text. Text that could be the start of a stop
 * string is held back until it either completes one (then it is dropped with
 * everything after it) or cannot any more (then it is emitted), so a stop
 * string never reaches the client and all other text goes out promptly.
 */

export interface StopPush {
  /** Text safe to send now. */
  emit: string;
  /** A stop string was seen; nothing more will be emitted. */
  stopped: boolean;
  /** Which stop string matched, when stopped. */
  stop?: string;
}

export interface StopMatcher {
  push(text: string): StopPush;
  /** End of generation without a stop: the held-back text ("" once stopped). */
  flush(): string;
}

export function createStopMatcher(stops: readonly string[]): StopMatcher {
  for (const s of stops) {
    if (typeof s !== "string") throw new TypeError(`stop strings must be strings, got ${typeof s}`);
  }
  const active = [...new Set(stops.filter((s) => s.length > 0))];
  let held = "";
  let stopped: string | undefined;

  return {
    push(text: string): StopPush {
      if (stopped !== undefined) return { emit: "", stopped: true, stop: stopped };
      const buffer = held + text;
      const match = earliestMatch(buffer, active);
      if (match) {
        held = "";
        stopped = match.stop;
        return { emit: buffer.slice(0, match.index), stopped: true, stop: match.stop };
      }
      const keep = longestPartialSuffix(buffer, active);
      held = buffer.slice(buffer.length - keep);
      return { emit: buffer.slice(0, buffer.length - keep), stopped: false };
    },
    flush(): string {
      const rest = held;
      held = "";
      return stopped === undefined ? rest : "";
    },
  };
}

/** The first position where any stop string occurs (the longest stop on a tie). */
function earliestMatch(
  buffer: string,
  stops: readonly string[],
): { index: number; stop: string } | undefined {
  let best: { index: number; stop: string } | undefined;
  for (const stop of stops) {
    const index = buffer.indexOf(stop);
    if (index < 0) continue;
    if (!best || index < best.index || (index === best.index && stop.length > best.stop.length)) {
      best = { index, stop };
    }
  }
  return best;
}

/**
 * Length of the longest tail of `buffer` that is a proper prefix of some stop
 * string. Called after `earliestMatch` found nothing, so no whole stop is in
 * the buffer. A well-formed stop never starts with a low surrogate, so the
 * cut never splits a surrogate pair.
 */
function longestPartialSuffix(buffer: string, stops: readonly string[]): number {
  let best = 0;
  for (const stop of stops) {
    const max = Math.min(stop.length - 1, buffer.length);
    for (let len = max; len > best; len--) {
      if (buffer.endsWith(stop.slice(0, len))) {
        best = len;
        break;
      }
    }
  }
  return best;
}
