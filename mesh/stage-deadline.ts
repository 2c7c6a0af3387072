/**
 * How long a coordinator waits for a remote stage's step before it counts the stage as dead:
 * 3 s, plus the time that stage has shown it needs for the rows. A frozen stage is noticed in
 * about 3 s; a slow but alive one (a big model on a CPU, a long prompt chunk) is never taken
 * for dead because its honest steps take longer than a fixed bound.
 */
import type { StageCall } from "./stage-messages.ts";

/** The part of a deadline no step's size explains: what detecting a dead stage costs. */
export const DEAD_STAGE_MS = 3000;
/** Per row, until the stage has been measured. */
const FIRST_MS_PER_ROW = 10;
/** Margin over the measured time per row: a busier moment must not look like death. */
const MARGIN = 3;

export interface StageDeadline {
  /** The deadline for a step of `rows` rows. */
  stepTimeoutMs(rows: number): number;
  /** Wraps a stage so its answered steps teach the deadline. */
  measure<C extends StageCall>(call: C): C;
}

export function stageDeadline(now: () => number = () => performance.now()): StageDeadline {
  let msPerRow = FIRST_MS_PER_ROW;
  let measured = false;
  return {
    stepTimeoutMs: (rows) => DEAD_STAGE_MS + rows * msPerRow,
    measure(call) {
      const step: StageCall["step"] = async (rows, hidden) => {
        const started = now();
        const out = await call.step(rows, hidden);
        const count = rows.reduce((n, r) => n + r.tokens.length, 0);
        const perRow = MARGIN * (now() - started) / Math.max(1, count);
        // A moving average that follows a slower stage at once and a faster one gently.
        msPerRow = !measured ? Math.max(FIRST_MS_PER_ROW, perRow) : Math.max(
          FIRST_MS_PER_ROW,
          perRow > msPerRow ? perRow : 0.8 * msPerRow + 0.2 * perRow,
        );
        measured = true;
        return out;
      };
      return Object.assign(Object.create(call), { step });
    },
  };
}
