import assert from "node:assert/strict";
import { openGguf } from "./gguf.ts";
import { modelConfigOf } from "./model-config.ts";
import { stageByteRanges } from "./stage-ranges.ts";
import { planTensors } from "./weights.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const inside = (ranges: [number, number][], start: number, end: number) =>
  ranges.some(([s, e]) => s <= start && end <= e);

Deno.test("stageByteRanges: the header and exactly the stage's tensors, merged", async () => {
  const file = await openGguf(STORIES);
  const config = modelConfigOf(file);
  for (const [start, end] of [[0, 2], [2, 4], [4, 5], [0, 5]]) {
    const ranges = stageByteRanges(file, config, start, end);
    const label = `[${start}, ${end})`;
    assert.ok(inside(ranges, 0, file.dataOffset), `${label}: the header`);
    const wanted = new Set(planTensors(file, config, start, end).map((t) => t.name));
    for (const t of file.tensors) {
      const covered = inside(ranges, t.offset, t.offset + t.byteLength);
      assert.equal(covered, wanted.has(t.name), `${label}: ${t.name}`);
    }
    for (let i = 1; i < ranges.length; i++) {
      assert.ok(ranges[i][0] - ranges[i - 1][1] >= file.alignment, `${label}: sorted, apart`);
    }
  }
  // stories260K's tensors: embedding, output norm, head, then the layers in order.
  assert.deepEqual(stageByteRanges(file, config, 2, 4), [
    [0, file.dataOffset],
    [file.tensor("blk.2.attn_q.weight")!.offset, file.tensor("blk.4.attn_q.weight")!.offset],
  ]);
  assert.deepEqual(stageByteRanges(file, config, 0, 5), [[0, file.fileSize]]);
});
