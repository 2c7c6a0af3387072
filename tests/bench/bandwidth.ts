/**
 * This machine's memory bandwidth from one thread, so decode speed can be read as a share of
 * it (decode on one core streams every weight once per token, so bandwidth bounds it).
 */
export interface Bandwidth {
  readGBps: number; // summing a 1 GiB Float64Array (best of runs)
  copyGBps: number; // copying 512 MiB with TypedArray.set, bytes read + written (best of runs)
}

function sum(a: Float64Array): number {
  // Four accumulators so the loop is not bound by one add chain's latency.
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let i = 0; i < a.length; i += 4) {
    s0 += a[i];
    s1 += a[i + 1];
    s2 += a[i + 2];
    s3 += a[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

function best(runs: number, f: () => void): number {
  let ms = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    ms = Math.min(ms, performance.now() - t);
  }
  return ms;
}

export function measureBandwidth(runs = 3): Bandwidth {
  const big = new Float64Array(1 << 27); // 1 GiB
  for (let i = 0; i < big.length; i += 512) big[i] = i; // touch every page
  let sink = 0;
  const readMs = best(runs, () => sink += sum(big));
  const src = new Uint8Array(big.buffer, 0, 1 << 29);
  const dst = new Uint8Array(1 << 29);
  dst.fill(1);
  const copyMs = best(runs, () => dst.set(src));
  if (Number.isNaN(sink)) throw new Error("unreachable: keeps the sum alive");
  return {
    readGBps: big.byteLength / 1e9 / (readMs / 1000),
    copyGBps: (2 * src.byteLength) / 1e9 / (copyMs / 1000),
  };
}

if (import.meta.main) console.log(measureBandwidth());
