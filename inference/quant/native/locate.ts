/**
 * Where the native kernels' library lives: `.grove/native/` in the repository, named by a hash
 * of its sources (and the build's flags) and of this CPU's feature flags, so an edited kernel, a
 * changed flag or a checkout moved to another CPU (-march=native code may not run there) finds
 * no library and uses WASM until the next build.
 */
const root = new URL("../../../", import.meta.url).pathname;
const SOURCES = [
  "wasm/kernels.c",
  "native/wasm_simd128.h",
  "native/pool.c",
  "native/attention.c",
  "native/activation.c",
  "native/matmul-f32.c",
  "native/exp8.h",
  "native/k-quants-row-x86.h",
  "native/k-quants-grouped.h",
  "native/build.ts", // its compiler and linker flags
];

function fnv1a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

/** This CPU's flags line (Linux), or null where it cannot be read. */
function cpuFlags(): string | null {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    const m = info.match(/^(flags|Features)\s*:(.*)$/m);
    const model = info.match(/^model name\s*:(.*)$/m)?.[1] ?? "";
    return m ? `${model}|${m[2].trim()}` : null;
  } catch {
    return null;
  }
}

/** The sources' and CPU's key, or null where either cannot be read. */
export function nativeSourceKey(): string | null {
  const flags = cpuFlags();
  if (flags === null) return null;
  try {
    let h = fnv1a(new TextEncoder().encode(`${Deno.build.target}|${flags}`));
    for (const s of SOURCES) h = fnv1a(Deno.readFileSync(new URL(`../${s}`, import.meta.url)), h);
    return h.toString(16).padStart(8, "0");
  } catch {
    return null;
  }
}

/** The library's path for `key`, or null off Linux. */
export function nativeLibrary(key: string | null): string | null {
  if (key === null || Deno.build.os !== "linux") return null;
  return `${root}.grove/native/grove-kernels-${key}.so`;
}
