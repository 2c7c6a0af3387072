/**
 * The batched engine's KV cache (batch-forward.ts): one buffer per layer made for every slot
 * (slot s owns rows s × rows-per-slot ..), of which the kernels bind only the slots in use,
 * 0 .. capacity - 1; a slot past them, when first acquired, widens the bindings.
 *
 * Why bindings and not buffers grown by copying: wgpu zero-fills a storage binding's whole range
 * before its first use, and on a software adapter (llvmpipe) device memory is host memory that
 * becomes resident only when touched, so memory left outside every binding costs nothing
 * resident. Bound whole from load, 8 slots of the 1.1 B model at ctx 1024 held 512 MiB where a
 * node serving one conversation uses 64 (issue 16's memory bound). Grown by copying into larger
 * buffers, each destroyed buffer's memory stayed in wgpu's pool (a few MiB per layer, too small
 * for an allocation of its own) and was not reused by the larger ones: measured on llvmpipe,
 * every growth added the new size, 64 + 128 + 192 ... MiB. On a GPU with memory of its own the
 * buffers reserve every slot's device memory at load, as before; RSS holds none of it there.
 */
import { createKvCache, destroyKvCache } from "./kernels/attention.ts";

export interface SlotKvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  /** Positions per slot of a full-context layer. */
  ctxSize: number;
  /** Per layer, the rows one slot holds (ctxSize, or a sliding-window layer's ring). */
  slotRows: readonly number[];
  /** Per layer, whether it keeps a cache (false: a qwen35moe linear layer). */
  cached: readonly boolean[];
  maxSlots: number;
}

export interface SlotKvCache {
  /** Layer `layer`'s keys and values, bound over the slots in use. */
  binding(layer: number): { keys: GPUBufferBinding; values: GPUBufferBinding };
  /** Slots the bindings cover now. */
  readonly capacity: number;
  /** Bumped by each widening: kernels bound before it bind again. */
  readonly generation: number;
  /** Bytes of cache the bindings cover now: what the device touches. */
  bytes(): number;
  /** Bytes one slot adds. */
  readonly slotBytes: number;
  /** Widens the bindings to hold slot `slot` (no-op when they already do). */
  reserve(slot: number): void;
  destroy(): void;
}

export function createSlotKvCache(
  device: GPUDevice,
  s: SlotKvShape,
  initialSlots = 1,
): SlotKvCache {
  const kv = createKvCache(device, {
    ...s,
    ctxSize: s.maxSlots * s.ctxSize,
    rows: s.slotRows.map((r) => s.maxSlots * r),
  });
  const slotBytes = s.slotRows.reduce(
    (a, r, li) => s.cached[li] === false ? a : a + r * (kv.kDim + kv.vDim) * 4,
    0,
  );
  let capacity = Math.min(Math.max(1, initialSlots), s.maxSlots);
  let generation = 0;
  // A linear layer's 16-byte placeholder is bound whole.
  const range = (b: GPUBuffer, li: number, width: number): GPUBufferBinding =>
    s.cached[li] === false
      ? { buffer: b }
      : { buffer: b, offset: 0, size: Math.max(16, capacity * s.slotRows[li] * width * 4) };
  return {
    binding: (li) => ({
      keys: range(kv.keys[li], li, kv.kDim),
      values: range(kv.values[li], li, kv.vDim),
    }),
    get capacity() {
      return capacity;
    },
    get generation() {
      return generation;
    },
    bytes: () => capacity * slotBytes,
    slotBytes,
    reserve(slot) {
      if (slot < capacity) return;
      if (slot >= s.maxSlots) throw new Error(`KV cache: slot ${slot} past ${s.maxSlots} slots`);
      capacity = slot + 1;
      generation++;
    },
    destroy: () => destroyKvCache(kv),
  };
}
