import assert from "node:assert/strict";
import { releaseFreedHeap } from "./release-heap.ts";
import { memoryKiB } from "../../tests/support/process-memory.ts";

const CHUNK = 64 * 1024; // under glibc's mmap threshold: from the heap
const CHUNKS = 1600; // 100 MiB

Deno.test("releaseFreedHeap gives back heap memory freed below a live allocation", () => {
  const libc = Deno.dlopen("libc.so.6", {
    malloc: { parameters: ["usize"], result: "pointer" },
    free: { parameters: ["pointer"], result: "void" },
    memset: { parameters: ["pointer", "i32", "usize"], result: "pointer" },
  });
  try {
    const chunks = Array.from({ length: CHUNKS }, () => {
      const p = libc.symbols.malloc(BigInt(CHUNK))!;
      libc.symbols.memset(p, 1, BigInt(CHUNK));
      return p;
    });
    // A live allocation above them (as large: no free chunk below holds it), so that glibc's
    // own trimming, which gives back only the heap's top, gives back none of them.
    const top = libc.symbols.malloc(BigInt(CHUNK));
    for (const p of chunks) libc.symbols.free(p);
    const before = memoryKiB(Deno.pid);
    assert.equal(releaseFreedHeap(), true);
    const given = (before - memoryKiB(Deno.pid)) * 1024;
    libc.symbols.free(top);
    assert.ok(
      given > 0.8 * CHUNK * CHUNKS,
      `gave back ${(given / 2 ** 20).toFixed(1)} MiB of ${(CHUNK * CHUNKS) / 2 ** 20} freed`,
    );
  } finally {
    libc.close();
  }
});
