/**
 * A first-fit allocator over one WebAssembly.Memory: the kernels' weights and
 * scratch live in it. Free ranges are kept sorted and merged, so weights of an
 * unloaded model are reused by the next one; the memory grows (never shrinks)
 * when nothing fits. wasm32 caps it at 4 GiB: past that `alloc` returns -1
 * and the caller falls back to the TypeScript kernels.
 */

const PAGE = 65536;
const ALIGN = 16;
const MAX_BYTES = 2 ** 32;

export interface Heap {
  memory: WebAssembly.Memory;
  /** Free [start, end) ranges, sorted by start, never adjacent. */
  free: { start: number; end: number }[];
}

/** A heap over `memory` from `base` (the module's `__heap_base`) to its current end. */
export function createHeap(memory: WebAssembly.Memory, base: number): Heap {
  const start = Math.ceil(base / ALIGN) * ALIGN;
  const end = memory.buffer.byteLength;
  return { memory, free: start < end ? [{ start, end }] : [] };
}

/** Start of `bytes` bytes aligned to 16, or -1 when the 4 GiB address space cannot hold them. */
export function alloc(heap: Heap, bytes: number): number {
  const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  let i = heap.free.findIndex((f) => f.end - f.start >= size);
  if (i < 0) {
    if (!grow(heap, size)) return -1;
    i = heap.free.length - 1;
  }
  const f = heap.free[i];
  const start = f.start;
  f.start += size;
  if (f.start === f.end) heap.free.splice(i, 1);
  return start;
}

/** Returns [start, start + bytes) (as passed to alloc) to the free list. */
export function release(heap: Heap, start: number, bytes: number): void {
  const end = start + Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const free = heap.free;
  let i = 0;
  while (i < free.length && free[i].start < start) i++;
  free.splice(i, 0, { start, end });
  if (i + 1 < free.length && free[i].end === free[i + 1].start) {
    free[i].end = free[i + 1].end;
    free.splice(i + 1, 1);
  }
  if (i > 0 && free[i - 1].end === free[i].start) {
    free[i - 1].end = free[i].end;
    free.splice(i, 1);
  }
}

/** Grows the memory so that its last free range holds `size` bytes; false at the 4 GiB cap. */
function grow(heap: Heap, size: number): boolean {
  const end = heap.memory.buffer.byteLength;
  const last = heap.free[heap.free.length - 1];
  const tail = last && last.end === end ? last.end - last.start : 0;
  const pages = Math.ceil((size - tail) / PAGE);
  if (end + pages * PAGE > MAX_BYTES) return false;
  try {
    heap.memory.grow(pages);
  } catch {
    return false; // the engine's own limit, or the machine's, is below 4 GiB
  }
  const newEnd = heap.memory.buffer.byteLength;
  if (tail > 0) last.end = newEnd;
  else heap.free.push({ start: end, end: newEnd });
  return true;
}
