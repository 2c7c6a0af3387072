/**
 * Gives the C heap's free pages back to the system (glibc's malloc_trim). glibc returns freed
 * memory on its own only from the top of its heaps, and raises its mmap threshold after large
 * frees, so a model's upload (each tensor read into a buffer, then dropped) and llvmpipe's
 * shader compiles (LLVM frees ~70 MiB of its ~100 MiB per matmul pipeline on the 1.1 B model)
 * leave tens of MiB resident that the node never uses again: on llvmpipe, a WebGPU node of the
 * 1.1 B Q4_0 model held 45 MiB less once trimmed after its warm-up.
 *
 * A no-op where there is nothing to call: not Linux, a C library without malloc_trim (musl), or
 * no FFI permission.
 */
let trim: (() => number) | null | undefined;

function load(): (() => number) | null {
  if (Deno.build.os !== "linux") return null;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      malloc_trim: { parameters: ["usize"], result: "i32" },
    });
    return () => libc.symbols.malloc_trim(0n);
  } catch {
    return null;
  }
}

/** True where the heap was trimmed (pages were given back or there were none to give). */
export function releaseFreedHeap(): boolean {
  trim ??= load();
  if (!trim) return false;
  trim();
  return true;
}
