import assert from "node:assert/strict";
import { createCpuEngine, type Engine } from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { createLocalService } from "./local-service.ts";
import { parseInferRequest } from "./request-limits.ts";
import {
  type InferEvent,
  type InferParams,
  type InferRequest,
  ServiceError,
  type TokenEvent,
} from "./service.ts";

let shared: Engine | undefined;
async function service() {
  const engine = shared ??= await createCpuEngine({ path: STORIES, ctxSize: 256 });
  return createLocalService({ engine, id: "stories260K" });
}

async function collect(events: AsyncIterable<InferEvent>): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const ev of events) out.push(ev);
  return out;
}

const tokens = (evs: InferEvent[]) => evs.filter((e): e is TokenEvent => e.type === "token");
const text = (evs: InferEvent[]) => {
  const done = evs.at(-1);
  return tokens(evs).map((e) => e.text).join("") + (done?.type === "done" ? done.tail ?? "" : "");
};

const BASE: InferRequest = {
  model: "stories260K",
  prompt: "Once upon a time",
  params: { max_tokens: 60, temperature: 0 },
};

/** The answer's events after the first `n` tokens, as a client node splices them. */
function after(evs: InferEvent[], n: number): InferEvent[] {
  let seen = 0;
  return evs.filter((e) => e.type !== "token" || ++seen > n);
}

const CASES: [string, InferParams][] = [
  ["greedy", { temperature: 0 }],
  ["seeded sampling", { temperature: 1.0, seed: 1234 }],
  ["unseeded sampling with a stop string and logprobs", {
    temperature: 1.0,
    stop: [" and the moon"],
    logprobs: true,
  }],
];
for (const [name, params] of CASES) {
  Deno.test(`a resumed answer goes on exactly as the uninterrupted one: ${name}`, async () => {
    const s = await service();
    try {
      const req = { ...BASE, params: { ...BASE.params, ...params }, resumable: true };
      const whole = await collect(s.infer(req, new AbortController().signal));
      const done = whole.at(-1)!;
      assert.equal(done.type, "done");
      const all = tokens(whole);
      assert.ok(all.length > 12, `only ${all.length} tokens: ${JSON.stringify(whole)}`);
      assert.ok(all.every((t) => t.rng?.length === 4), "each token carries the RNG state");
      const cut = 10;
      const resume = { tokens: all.slice(0, cut).map((t) => t.id), rng: all[cut - 1].rng };
      const continued = await collect(s.infer({ ...req, resume }, new AbortController().signal));
      const head = tokens(continued).slice(0, cut);
      assert.deepEqual(head.map((t) => t.id), resume.tokens, "the resumed tokens come again first");
      assert.deepEqual(
        head.map((t) => t.text),
        all.slice(0, cut).map((t) => t.text),
        "with the text they had",
      );
      // The caller's answer: the first node's first `cut` tokens, then the continuation's rest.
      const spliced = [
        ...whole.filter((e) => e.type === "token").slice(0, cut),
        ...after(continued, cut),
      ];
      assert.equal(text(spliced), text(whole));
      assert.deepEqual(tokens(spliced).map((t) => t.id), all.map((t) => t.id));
      const end = continued.at(-1)!;
      assert.ok(end.type === "done" && done.type === "done");
      assert.deepEqual(end.usage, done.usage, "prompt tokens counted once, the answer whole");
      assert.equal(end.finish_reason, done.finish_reason);
      if (params.logprobs) {
        const later = tokens(after(continued, cut)).filter((t) => t.text !== undefined);
        assert.ok(later.every((t) => typeof t.logprob === "number"), "logprobs go on");
      }
    } finally {
      s.close();
    }
  });
}

Deno.test("a continuation request is checked: token ids, the RNG state, room left", () => {
  const ok = { ...BASE, resume: { tokens: [1, 2, 3], rng: [1, 2, 3, 4] }, resumable: true };
  assert.deepEqual(parseInferRequest(ok), ok);
  const bad: [unknown, RegExp][] = [
    [{ ...BASE, resumable: "yes" }, /resumable is not a boolean/],
    [{ ...BASE, resume: [1, 2] }, /resume is not an object/],
    [{ ...BASE, resume: { tokens: [] } }, /non-empty array of token ids/],
    [{ ...BASE, resume: { tokens: [1, -2] } }, /non-empty array of token ids/],
    [{ ...BASE, resume: { tokens: [1.5] } }, /non-empty array of token ids/],
    [{ ...BASE, resume: { tokens: [1], rng: [0, 0, 0, 0] } }, /4 uint32 words, not all 0/],
    [{ ...BASE, resume: { tokens: [1], rng: [1, 2, 3] } }, /4 uint32 words/],
    [{ ...BASE, resume: { tokens: [1], rng: [1, 2, 3, 2 ** 32] } }, /4 uint32 words/],
    [{ ...BASE, resume: { tokens: [1], seed: 3 } }, /resume.seed is not supported/],
    [
      { ...BASE, params: { max_tokens: 2 }, resume: { tokens: [1, 2] } },
      /max_tokens \(2\) leaves none/,
    ],
  ];
  for (const [frame, why] of bad) {
    assert.throws(
      () => parseInferRequest(frame),
      (e) => e instanceof ServiceError && e.code === "invalid_request" && why.test(e.message),
      JSON.stringify(frame),
    );
  }
});

Deno.test("a serving node refuses resumed tokens outside its vocabulary", async () => {
  const s = await service();
  try {
    const evs = await collect(
      s.infer({ ...BASE, resume: { tokens: [1, 10_000_000] } }, new AbortController().signal),
    );
    assert.equal(evs.length, 1);
    assert.ok(evs[0].type === "error" && evs[0].code === "invalid_request", JSON.stringify(evs));
    assert.ok(s.features().includes("resume"));
  } finally {
    s.close();
  }
});
