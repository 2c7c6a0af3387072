/**
 * Builds the native kernels: ../wasm/kernels.c (the WASM build's source) with this directory's
 * wasm_simd128.h, which gives its SIMD intrinsics their WebAssembly meaning in native vector
 * code, and pool.c (entry points, a second thread), into a shared library for this machine's
 * CPU (-march=native), loaded through Deno's FFI (matvec-native.ts). Run at install where a C
 * compiler is present (README); without one, or on another CPU, the WASM kernels serve.
 *   npx deno run -A inference/quant/native/build.ts
 * No -ffast-math, and -ffp-contract=off: the f64 block sums must keep the WASM build's exact
 * operations (a fused multiply-add would round once where it rounds twice).
 */
import { nativeLibrary, nativeSourceKey } from "./locate.ts";

const here = new URL(".", import.meta.url).pathname;
const clang = Deno.env.get("CLANG") ?? "clang-19";

/** Compiles into `out` (default: where matvec-native.ts looks); throws on failure. */
export async function buildNative(out?: string): Promise<string> {
  const lib = nativeLibrary(nativeSourceKey());
  if (!lib) throw new Error("native kernels: this platform has no build (Linux only)");
  const path = out ?? lib;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const partial = `${path}.partial`;
  const cmd = new Deno.Command(clang, {
    args: [
      "-O3",
      "-march=native",
      "-ffp-contract=off",
      "-DRELAXED", // the relaxed dots: exact here for every level the kernels give them
      "-fPIC",
      "-shared",
      "-Wall",
      "-Wextra",
      "-Werror",
      // Eight-lane vectors pass between static functions only: their ABI is nobody's concern.
      "-Wno-psabi",
      `-I${here}`,
      `${here}../wasm/kernels.c`,
      `${here}pool.c`,
      `${here}attention.c`,
      `${here}activation.c`,
      `${here}matmul-f32.c`,
      "-lpthread",
      // Calls within the library bind to its own functions: a process may hold another library
      // exporting the same names (libggml-base.so, which the test task preloads, has its own
      // quantize_q8_0), and pool.c's row kernels crashed calling ggml's in its place.
      "-Wl,-Bsymbolic",
      // Never unmapped: the helper thread sleeps in this code when Deno closes the library.
      "-Wl,-z,nodelete",
      "-o",
      partial,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const res = await cmd.output();
  if (!res.success) {
    throw new Error(`${clang} failed:\n${new TextDecoder().decode(res.stderr)}`);
  }
  await Deno.rename(partial, path);
  if (!out) {
    // Builds of older sources or another CPU are never loaded again.
    const dir = path.slice(0, path.lastIndexOf("/"));
    for await (const e of Deno.readDir(dir)) {
      const stale = `${dir}/${e.name}`;
      if (/^grove-kernels-.*\.so$/.test(e.name) && stale !== path) await Deno.remove(stale);
    }
  }
  return path;
}

if (import.meta.main) {
  try {
    console.log(`built ${await buildNative()}`);
  } catch (e) {
    // No compiler is no error: the WASM kernels serve.
    console.log(`native kernels not built (${(e as Error).message.split("\n")[0]}); WASM serves`);
  }
}
