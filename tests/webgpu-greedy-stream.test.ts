/**
 * The WebGPU session's greedy stream: each pick fed back as the next token on the device, with
 * steps queued ahead of the readbacks. It must give exactly the picks and positions of
 * evaluateGreedy called once per token, stop early without leaving steps in the cache, and
 * carry generate()'s plain greedy decoding (stop strings included) on stories260K.
 */
import assert from "node:assert/strict";
import { type Engine, generate, type Session } from "../inference/mod.ts";
import { createWebGpuEngine, type WebGpuEngine } from "../inference/webgpu/mod.ts";
import { MAX_GREEDY_DEPTH } from "../inference/webgpu/webgpu-engine.ts";
import { createTestGpu } from "./support/gpu.ts";
import type { GenerateOptions } from "../inference/generate.ts";
import { STORIES } from "./helpers.ts";

let gpuEngine: WebGpuEngine | undefined;
async function gpu(): Promise<WebGpuEngine> {
  gpuEngine ??= await createWebGpuEngine({
    path: STORIES,
    ctxSize: 128,
    gpu: await createTestGpu(),
  });
  return gpuEngine;
}

/** The reference: a host round trip per token. */
async function loopPicks(s: Session, prompt: number[], count: number): Promise<number[]> {
  const picks = [await s.evaluateGreedy!(prompt)];
  while (picks.length < count) picks.push(await s.evaluateGreedy!([picks.at(-1)!]));
  return picks;
}

async function streamPicks(s: Session, prompt: number[], count: number, stopAfter = count) {
  const picks: number[] = [];
  for await (const p of s.evaluateGreedyStream!(prompt, count)) {
    picks.push(p);
    if (picks.length === stopAfter) break;
  }
  return picks;
}

const PROMPT = [1, 415, 259, 312, 296]; // "Once upon a time" and more, a few tokens of prefill

Deno.test("webgpu greedy stream: the picks and position of one evaluateGreedy per token", async () => {
  const engine = await gpu();
  const a = engine.createSession(), b = engine.createSession();
  const count = MAX_GREEDY_DEPTH + 6; // longer than the deepest queue
  const want = await loopPicks(a, PROMPT, count);
  const got = await streamPicks(b, PROMPT, count);
  assert.deepEqual(got, want);
  assert.equal(b.position, a.position);
  assert.equal(b.position, PROMPT.length + count - 1); // the last pick is not fed
  // the cache holds the same sequence: the next token agrees too
  assert.equal(await b.evaluateGreedy!([got.at(-1)!]), await a.evaluateGreedy!([want.at(-1)!]));
});

Deno.test("webgpu greedy stream: stopped early, it rewinds the steps it ran ahead", async () => {
  const engine = await gpu();
  const a = engine.createSession(), b = engine.createSession();
  const want = await loopPicks(a, PROMPT, 40);
  for (const stopAfter of [1, 3, 17]) {
    b.rewind(0);
    const got = await streamPicks(b, PROMPT, 40, stopAfter);
    assert.deepEqual(got, want.slice(0, stopAfter));
    assert.equal(b.position, PROMPT.length + stopAfter - 1, `stopped after ${stopAfter}`);
    // the session is free again and its cache ends where the picks read so far put it
    assert.equal(await b.evaluateGreedy!([got.at(-1)!]), want[stopAfter]);
  }
  // a stream continued from a rewound position
  b.rewind(PROMPT.length + 9);
  const rest = await streamPicks(b, [want[9]], 30);
  assert.deepEqual(rest, want.slice(10, 40));
});

Deno.test("webgpu greedy stream: clear errors, and the session stays usable", async () => {
  const engine = await gpu();
  const s = engine.createSession();
  await assert.rejects(() => streamPicks(s, PROMPT, 0), /max ≥ 1/);
  await assert.rejects(() => streamPicks(s, [999], 3), /token id 999 is outside the vocabulary/);
  await assert.rejects(() => streamPicks(s, PROMPT, 125), /context full/);
  assert.equal(s.position, 0);
  const it = s.evaluateGreedyStream!(PROMPT, 10);
  await it.next();
  await assert.rejects(() => s.evaluateGreedy!([1]), /already evaluating/);
  await it.return();
  assert.equal(s.position, PROMPT.length);
  assert.equal(typeof await s.evaluateGreedy!([1]), "number");
});

/** A session that counts which evaluation path generate() takes. */
function spy(inner: Session, stream: boolean) {
  const calls = { greedy: 0, stream: 0 };
  const session: Session = {
    get position() {
      return inner.position;
    },
    evaluate: (t) => inner.evaluate(t),
    evaluateAsync: (t) => inner.evaluateAsync!(t),
    evaluateGreedy: (t) => (calls.greedy++, inner.evaluateGreedy!(t)),
    evaluateGreedyStream: stream
      ? (t, max) => (calls.stream++, inner.evaluateGreedyStream!(t, max))
      : undefined,
    rewind: (p) => inner.rewind(p),
  };
  return { session, calls };
}

async function run(engine: Engine, prompt: number[], options: GenerateOptions) {
  const ids: number[] = [];
  let text = "";
  const it = generate(engine, prompt, options);
  let step = await it.next();
  while (!step.done) {
    ids.push(step.value.id);
    text += step.value.text;
    step = await it.next();
  }
  return { ids, text: text + step.value.tail, finish: step.value.finishReason };
}

Deno.test("webgpu generate: plain greedy decodes through the stream, stop strings too", async () => {
  const engine = await gpu();
  const cases: GenerateOptions[] = [
    { maxTokens: 60 },
    { maxTokens: 1 },
    { maxTokens: 60, stop: ["park"] }, // a stop in the middle: the steps run ahead are dropped
  ];
  for (const o of cases) {
    const fast = spy(engine.createSession(), true);
    const slow = spy(engine.createSession(), false);
    const got = await run(engine, [1], { ...o, temperature: 0, session: fast.session });
    const want = await run(engine, [1], { ...o, temperature: 0, session: slow.session });
    assert.deepEqual(got, want, JSON.stringify(o));
    assert.deepEqual(fast.calls, { greedy: 0, stream: 1 });
    assert.equal(fast.session.position, slow.session.position, JSON.stringify(o));
  }
  // a consumer that leaves early frees the session for the next request
  const { session } = spy(engine.createSession(), true);
  for await (const _ of generate(engine, [1], { temperature: 0, maxTokens: 50, session })) break;
  assert.equal(session.position, 1);
  const again = await run(engine, [1], { temperature: 0, maxTokens: 20, session });
  assert.equal(again.ids.length, 20);
});

Deno.test("webgpu greedy stream: release the device memory", () => {
  gpuEngine?.close();
});
