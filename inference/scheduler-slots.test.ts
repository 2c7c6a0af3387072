import assert from "node:assert/strict";
import { createSchedulerSlots } from "./scheduler-slots.ts";

/** The part of a batch engine the slot table uses: `maxSlots` slots, the lowest free first. */
function fakeBatch(maxSlots: number) {
  const taken = new Set<number>();
  return {
    maxSlots,
    taken,
    acquire() {
      for (let i = 0; i < maxSlots; i++) {
        if (!taken.has(i)) return taken.add(i), i;
      }
      return undefined;
    },
    release(slot: number) {
      assert.ok(taken.delete(slot), `slot ${slot} was not taken`);
    },
  };
}

const seq = (name: string) => ({ name, slot: -1 });

Deno.test("scheduler slots: the first in line run, up to the bound, each with its slot", () => {
  const batch = fakeBatch(4);
  const slots = createSchedulerSlots<ReturnType<typeof seq>>(batch, 2);
  const line = [seq("a"), seq("b"), seq("c")];
  assert.equal(slots.free(), 2);
  const admitted = slots.admit(line);
  assert.deepEqual(admitted.map((s) => [s.name, s.slot]), [["a", 0], ["b", 1]]);
  assert.deepEqual(line.map((s) => s.name), ["c"], "the rest still wait");
  assert.equal(slots.free(), 0);
  assert.deepEqual(slots.admit(line), []);

  slots.release(admitted[0]);
  assert.deepEqual(slots.running.map((s) => s.name), ["b"]);
  assert.deepEqual([...batch.taken], [1], "the engine got the slot back");
  assert.deepEqual(slots.admit(line).map((s) => [s.name, s.slot]), [["c", 0]]);
});

Deno.test("scheduler slots: the engine's slots bound them too, and a bound under 1 is refused", () => {
  const batch = fakeBatch(1);
  batch.acquire(); // taken by someone else
  const slots = createSchedulerSlots<ReturnType<typeof seq>>(batch, 8);
  assert.equal(slots.free(), 1, "the bound is the engine's slots");
  const line = [seq("a")];
  assert.deepEqual(slots.admit(line), [], "no engine slot free: it waits");
  assert.equal(line.length, 1);
  assert.throws(() => createSchedulerSlots(fakeBatch(2), 0), /maxConcurrent must be ≥ 1/);
});

/** fakeBatch with positions and rewinds; `partial: false` refuses a rewind short of the end. */
function rewindingBatch(maxSlots: number, partial = true) {
  const batch = fakeBatch(maxSlots);
  const positions = new Array<number>(maxSlots).fill(0);
  const rewinds: [number, number][] = [];
  return {
    ...batch,
    positions,
    rewinds,
    acquire() {
      const slot = batch.acquire();
      if (slot !== undefined) positions[slot] = 0;
      return slot;
    },
    position: (slot: number) => positions[slot],
    rewind(slot: number, position: number) {
      if (!partial && position !== 0 && position !== positions[slot]) throw new Error("refused");
      rewinds.push([slot, position]);
      positions[slot] = position;
    },
  };
}

type Item = {
  name: string;
  slot: number;
  prefix?: { owner: string; tokens: number[] };
  cached?: number;
};
const ask = (name: string, owner: string, tokens: number[]): Item => ({
  name,
  slot: -1,
  prefix: { owner, tokens },
});

/** Runs `item` to its end: its slot's cache holds `tokens` (prompt and answer). */
function runTo(
  slots: ReturnType<typeof createSchedulerSlots<Item>>,
  batch: ReturnType<typeof rewindingBatch>,
  item: Item,
  tokens: number[],
) {
  const [admitted] = slots.admit([item]);
  assert.equal(admitted, item, `${item.name} was not admitted`);
  batch.positions[item.slot] = tokens.length;
  slots.release(item, { owner: item.prefix!.owner, tokens: [...tokens, 99] });
  return item;
}

Deno.test("scheduler slots, reuse: a match of half its cache or more wins; less takes a free slot", () => {
  const batch = rewindingBatch(2);
  const slots = createSchedulerSlots<Item>(batch, 2, { reuse: true });
  const a = runTo(slots, batch, ask("a", "A", [1, 2, 3, 4]), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...batch.taken], [a.slot], "the cached slot stays taken from the engine");
  assert.equal(slots.free(), 2, "a cached slot is not running");
  // 3 of 6 cached tokens shared: reused, rewound to 3.
  const b = slots.admit([ask("b", "A", [1, 2, 3, 9])])[0];
  assert.equal(b.slot, a.slot);
  assert.equal(b.cached, 3);
  assert.deepEqual(batch.rewinds, [[a.slot, 3]]);
  slots.release(b);
  assert.deepEqual([...batch.taken], [], "released without keep: back to the engine");

  const c = runTo(slots, batch, ask("c", "A", [1, 2, 3, 4]), [1, 2, 3, 4, 5, 6]);
  const d = slots.admit([ask("d", "A", [1, 2, 8])])[0];
  assert.notEqual(d.slot, c.slot, "2 of 6: a free slot, the cache kept for its conversation");
  assert.equal(d.cached, 0);
  // No slot free now: the partial match is taken rather than nothing.
  const e = slots.admit([ask("e", "A", [1, 2, 8])])[0];
  assert.equal(e.slot, c.slot);
  assert.equal(e.cached, 2);
});

Deno.test("scheduler slots, reuse: another owner evicts the oldest cache; a refused rewind empties", () => {
  const batch = rewindingBatch(2, false);
  const slots = createSchedulerSlots<Item>(batch, 2, { reuse: true });
  const a = runTo(slots, batch, ask("a", "A", [1, 2]), [1, 2, 3]);
  const b = runTo(slots, batch, ask("b", "B", [1, 2]), [1, 2, 3]);
  const c = slots.admit([ask("c", "C", [1, 2, 3, 4])])[0];
  assert.equal(c.slot, a.slot, "A's, the older, gave its slot up");
  assert.equal(c.cached, 0, "never B's cache for C, though it shares all of it");
  assert.equal(batch.positions[c.slot], 0, "the evicted slot came back empty");
  slots.release(c);
  // B's cache [1, 2, 3] for [1, 2, 9]: a rewind to 2 the engine refuses, so the slot starts clean.
  const d = slots.admit([ask("d", "B", [1, 2, 9])])[0];
  assert.equal(d.slot, b.slot);
  assert.equal(d.cached, 0);
  assert.equal(batch.positions[d.slot], 0);
});
