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
