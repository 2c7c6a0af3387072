/** The middle value (the upper middle of an even count): runs here are few and noisy. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  return [...values].sort((a, b) => a - b)[values.length >> 1];
}

/**
 * Rounds that phases compared with each other take in turn (batching.ts: one sequence, then
 * several): this machine's speed drifts with other work over seconds, and timed one after the
 * other two phases met different loads (1 vs 8 CPU streams: ratios of 2.2 to 2.9 in one bench
 * run; 1 vs 16 on WebGPU: 3.5 to 5.7).
 */
export const ROUNDS = 4;

/** Total seconds of `rounds` timings taken in turn with `phases`, per phase. */
async function interleaved(rounds: number, phases: (() => Promise<void>)[]): Promise<number[]> {
  const seconds = phases.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (const [i, phase] of phases.entries()) {
      const t0 = performance.now();
      await phase();
      seconds[i] += (performance.now() - t0) / 1000;
    }
  }
  return seconds;
}

/**
 * Decode tok/s of one sequence (`lone`: one step of it) and of `width` sequences stepping
 * together (`group`), each after a warm-up step, `steps` steps each in ROUNDS alternating rounds.
 */
export async function alternatingRates(
  steps: number,
  width: number,
  lone: () => Promise<void>,
  group: () => Promise<void>,
): Promise<{ single: number; concurrent: number }> {
  await lone(); // warm-up steps
  await group();
  const per = Math.ceil(steps / ROUNDS);
  const repeat = (step: () => Promise<void>) => async () => {
    for (let s = 0; s < per; s++) await step();
  };
  const [single, concurrent] = await interleaved(ROUNDS, [repeat(lone), repeat(group)]);
  return { single: (per * ROUNDS) / single, concurrent: (width * per * ROUNDS) / concurrent };
}
