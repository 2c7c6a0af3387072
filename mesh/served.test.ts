import assert from "node:assert/strict";
import { countServed, type ServedRecord } from "./served.ts";
import type { InferenceService, InferEvent } from "./service.ts";
import { doneEvent } from "../tests/support/fake-service.ts";

const done: InferEvent = doneEvent(7, 2);

Deno.test("countServed: records each served request and tells of load changes", async () => {
  const inner: InferenceService = {
    models: () => Promise.resolve([]),
    infer: async function* () {
      yield { type: "token", text: "a", id: 1 };
      yield { type: "token", text: "b", id: 2 };
      yield done;
    },
  };
  const records: ServedRecord[] = [];
  let changes = 0;
  const s = countServed(inner, { onChange: () => changes++, onServed: (r) => records.push(r) });
  const events = [];
  const signal = new AbortController().signal;
  for await (const e of s.infer({ model: "m", prompt: "x", params: {} }, signal)) events.push(e);
  assert.equal(events.length, 3);
  assert.equal(changes, 2, "one at the start, one at the end");
  assert.equal(records.length, 1);
  assert.equal(records[0].outcome, "ok");
  assert.equal(records[0].endpoint, "completions");
  assert.equal(records[0].promptTokens, 7);
  assert.equal(records[0].completionTokens, 2);
  assert.ok(records[0].ttftSeconds! >= 0);
});
