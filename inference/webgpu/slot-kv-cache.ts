/**
 * The batched engine's KV cache (batch-forward.ts), grown with the slots in use: one buffer per
 * layer holds slots 0 .. capacity - 1 (slot s owns rows s × rows-per-slot ..), and a slot past the
 * capacity, when first acquired, grows every layer's buffer to hold it, copying the slots already
 * held on the device. Made whole for every slot at load, 8 slots of the 1.1 B model at ctx 1024
 * held 512 MiB where a node serving one conversation uses 64 (issue 16's memory bound).
 *
 * A grown cache's buffers are new: kernels bound to the old ones rebind when `generation`
 * changes. The old buffers are destroyed after the copy is submitted; WebGPU frees them once the
 * submitted work that reads them (a step still in flight, the copy) is done.
 */
import { createKvCache, destroyKvCache, type KvCache } from "./kernels/attention.ts";

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
  readonly keys: readonly GPUBuffer[];
  readonly values: readonly GPUBuffer[];
  /** Slots the buffers hold now. */
  readonly capacity: number;
  /** Bumped by each growth: kernels bound to the buffers rebind when it changes. */
  readonly generation: number;
  /** Device bytes the buffers hold now. */
  bytes(): number;
  /** Bytes one slot adds. */
  readonly slotBytes: number;
  /** Grows to hold slot `slot` (no-op when it already does). */
  reserve(slot: number): void;
  destroy(): void;
}

/** Fails at load, not at the first request that needs the last slot, when all slots cannot be bound. */
function checkFits(device: GPUDevice, s: SlotKvShape) {
  const width = s.kvHeads * Math.max(s.headDim, s.valueDim);
  const largest = s.maxSlots * Math.max(...s.slotRows, 0) * width * 4;
  const limit = device.limits.maxStorageBufferBindingSize;
  if (largest > limit) {
    throw new Error(
      `KV cache: one layer's ${s.maxSlots} slots × ${Math.max(...s.slotRows)} positions × ` +
        `${width} values (${largest} bytes) exceed the storage binding limit ${limit}; ` +
        "use a smaller context or fewer slots",
    );
  }
}

export function createSlotKvCache(
  device: GPUDevice,
  s: SlotKvShape,
  initialSlots = 1,
): SlotKvCache {
  checkFits(device, s);
  const make = (slots: number): KvCache =>
    createKvCache(device, {
      ...s,
      ctxSize: slots * s.ctxSize,
      rows: s.slotRows.map((r) => slots * r),
      cached: s.cached,
    });
  // A linear layer's 16-byte placeholder is no cache.
  const bytesOf = (kv: KvCache) =>
    kv.keys.reduce((a, k, li) => s.cached[li] === false ? a : a + k.size + kv.values[li].size, 0);
  let capacity = Math.min(Math.max(1, initialSlots), s.maxSlots);
  let kv = make(capacity);
  let generation = 0;
  const slotBytes = bytesOf(kv) / capacity;

  return {
    get keys() {
      return kv.keys;
    },
    get values() {
      return kv.values;
    },
    get capacity() {
      return capacity;
    },
    get generation() {
      return generation;
    },
    bytes: () => bytesOf(kv),
    slotBytes,
    reserve(slot) {
      if (slot < capacity) return;
      if (slot >= s.maxSlots) throw new Error(`KV cache: slot ${slot} past ${s.maxSlots} slots`);
      const grown = make(slot + 1);
      const enc = device.createCommandEncoder({ label: "kv cache growth" });
      // Slot s's rows start at s × rows-per-slot in every size, so the held slots copy as one run.
      for (const [from, to] of [[kv.keys, grown.keys], [kv.values, grown.values]]) {
        from.forEach((b, li) => {
          if (s.cached[li] !== false) enc.copyBufferToBuffer(b, 0, to[li], 0, b.size);
        });
      }
      device.queue.submit([enc.finish()]);
      destroyKvCache(kv);
      kv = grown;
      capacity = slot + 1;
      generation++;
    },
    destroy: () => destroyKvCache(kv),
  };
}
