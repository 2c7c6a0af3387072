import assert from "node:assert/strict";
import { createMetrics } from "./metrics.ts";

Deno.test("metrics: the process' resident memory and heap are gauges", () => {
  const text = createMetrics().render();
  for (const name of ["process_resident_memory_bytes", "grove_heap_used_bytes"]) {
    assert.match(text, new RegExp(`# TYPE ${name} gauge\\n`));
    const value = Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    assert.ok(value > 1024 * 1024, `${name} ${value}`);
  }
  const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)![1]);
  assert.ok(Math.abs(rss - Deno.memoryUsage().rss) < 64 * 1024 * 1024);
});
