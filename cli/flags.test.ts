import assert from "node:assert/strict";
import { closestFlag, parseFlags } from "./flags.ts";

const FLAGS = {
  model: { type: "string" },
  port: { type: "string" },
  "max-memory": { type: "string" },
  gpu: { type: "boolean" },
} as const;

Deno.test("an unknown flag names the closest known one, and only a near one", () => {
  assert.throws(
    () => parseFlags(["--modle", "x"], FLAGS),
    /unknown option --modle: did you mean --model\?/,
  );
  assert.throws(() => parseFlags(["--max-memroy", "1GiB"], FLAGS), /did you mean --max-memory\?/);
  assert.throws(() => parseFlags(["--gpus"], FLAGS), /did you mean --gpu\?/);
  assert.throws(
    () => parseFlags(["--temperature", "1"], FLAGS),
    (e: Error) => /unknown option --temperature \(--help lists the flags\)/.test(e.message),
  );
  assert.deepEqual({ ...parseFlags(["--model", "m", "--gpu"], FLAGS) }, { model: "m", gpu: true });
});

Deno.test("closestFlag: typos and swaps are near, other words are not", () => {
  const known = Object.keys(FLAGS);
  assert.equal(closestFlag("prot", known), "port");
  assert.equal(closestFlag("mdel", known), "model");
  assert.equal(closestFlag("max-mem", known), undefined, "a stem is no typo");
  assert.equal(closestFlag("relay", known), undefined);
});
