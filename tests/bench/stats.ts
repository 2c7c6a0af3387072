/** The middle value (the upper middle of an even count): runs here are few and noisy. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  return [...values].sort((a, b) => a - b)[values.length >> 1];
}
