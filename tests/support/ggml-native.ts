/**
 * llama.cpp's own ggml libraries (shipped by the node-llama-cpp dev dependency), opened for
 * the oracle tests and never closed. ggml installs a std::terminate handler when it loads and
 * aborts if that handler is already in place, which is what a library closed and loaded again
 * at the same address finds: the whole test process would die.
 */
export function openGgml<S extends Deno.ForeignLibraryInterface>(
  path: URL,
  symbols: S,
): Deno.DynamicLibrary<S> {
  return Deno.dlopen(path, symbols);
}
