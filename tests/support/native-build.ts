/**
 * A fresh build of the native kernels' current sources for the tests that hold them to the
 * WASM and TypeScript references. Null only where this machine has no C compiler (or is not
 * Linux): the WASM kernels then serve alone and those tests check that the native ones stay
 * off. A source that fails to compile fails the tests instead of skipping them.
 */
import { buildNative } from "../../inference/quant/native/mod.ts";

export async function freshNativeBuild(): Promise<string | null> {
  if (Deno.build.os !== "linux") return null;
  const dir = await Deno.makeTempDir();
  try {
    return await buildNative(`${dir}/grove-kernels.so`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null; // no clang here
    throw e;
  }
}
