import assert from "node:assert/strict";
import { alloc, createHeap, release } from "./heap.ts";

Deno.test("heap hands out aligned, disjoint ranges and reuses freed ones", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const heap = createHeap(memory, 1000);
  const a = alloc(heap, 100);
  const b = alloc(heap, 5000);
  assert.equal(a % 16, 0);
  assert.ok(a >= 1000 && b >= a + 100);
  release(heap, a, 100);
  assert.equal(alloc(heap, 50), a, "the freed range is found first");
});

Deno.test("heap grows the memory when nothing fits and merges freed neighbours", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const heap = createHeap(memory, 0);
  const a = alloc(heap, 40000);
  const b = alloc(heap, 100000); // beyond the first 64 KiB page
  assert.ok(memory.buffer.byteLength >= b + 100000);
  release(heap, a, 40000);
  release(heap, b, 100000);
  assert.equal(heap.free.length, 1, "adjacent free ranges merge into one");
  assert.equal(alloc(heap, 140000), 0);
});

Deno.test("heap says -1 when the memory may not grow further", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
  const heap = createHeap(memory, 0);
  assert.equal(alloc(heap, 3 * 65536), -1);
  assert.ok(alloc(heap, 65536) >= 0);
});
