/**
 * generate() on the WebGPU engine: the greedy fast path (argmax on the device),
 * sampling from read-back logits, chunked prefill, rewinding and the errors a
 * caller can hit, all against the CPU engine on stories260K.
 */
import assert from "node:assert/strict";
import { createCpuEngine, type Engine, generate, type Session } from "../inference/mod.ts";
import { createWebGpuEngine, type WebGpuEngine } from "../inference/webgpu/mod.ts";
import { createTestGpu } from "./support/gpu.ts";
import type { GenerateOptions } from "../inference/generate.ts";
import { STORIES } from "./helpers.ts";
import { argmax } from "./support/logits.ts";

const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

async function run(engine: Engine, prompt: number[], options: GenerateOptions) {
  const ids: number[] = [], logprobs: number[] = [];
  let text = "";
  const it = generate(engine, prompt, options);
  let step = await it.next();
  while (!step.done) {
    ids.push(step.value.id);
    logprobs.push(step.value.logprob);
    text += step.value.text;
    step = await it.next();
  }
  return { ids, logprobs, text: text + step.value.tail };
}

/** A session that counts which evaluation path generate() takes. */
function spy(inner: Session) {
  const calls = { greedy: 0, logits: 0 };
  const session: Session = {
    get position() {
      return inner.position;
    },
    evaluate: (t) => inner.evaluate(t),
    evaluateAsync: (t) => (calls.logits++, inner.evaluateAsync!(t)),
    evaluateGreedy: (t) => (calls.greedy++, inner.evaluateGreedy!(t)),
    rewind: (p) => inner.rewind(p),
  };
  return { session, calls };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

// Like with like: the GPU's KV cache is f32 (the CPU's default f16 would move logits by ~1e-2).
const cpu = await createCpuEngine({ path: STORIES, ctxSize: 128, kvType: "f32" });
let gpuEngine: WebGpuEngine | undefined;
async function gpu(): Promise<WebGpuEngine> {
  gpuEngine ??= await createWebGpuEngine({
    path: STORIES,
    ctxSize: 128,
    gpu: await createTestGpu(),
  });
  return gpuEngine;
}

Deno.test("webgpu generate: greedy picks on the device and tells the CPU's story", async () => {
  const engine = await gpu();
  assert.equal(engine.info.backend, "webgpu");
  assert.match(engine.info.adapter, /\S/);
  const { session, calls } = spy(engine.createSession());
  const got = await run(engine, [1], { temperature: 0, maxTokens: 60, session });
  const want = await run(cpu, [1], { temperature: 0, maxTokens: 60 });
  assert.ok(got.text.trimStart().startsWith(STORY), got.text);
  assert.deepEqual(got.ids, want.ids);
  assert.equal(calls.logits, 0);
  assert.equal(calls.greedy, 60); // the prompt, then each token but the last
  assert.ok(got.logprobs.every(Number.isNaN), "the fast path does not know logprobs");
});

Deno.test("webgpu generate: logprobs and sampling read the logits back", async () => {
  const engine = await gpu();
  const { session, calls } = spy(engine.createSession());
  const got = await run(engine, [1], { temperature: 0, maxTokens: 20, logprobs: true, session });
  const want = await run(cpu, [1], { temperature: 0, maxTokens: 20 });
  assert.equal(calls.greedy, 0);
  assert.deepEqual(got.ids, want.ids);
  got.logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - want.logprobs[i]) < 1e-4, `${i}`));
  const sampled = { temperature: 1, seed: 7, maxTokens: 30 };
  assert.equal((await run(engine, [1], sampled)).text, (await run(cpu, [1], sampled)).text);
});

Deno.test("webgpu session: a prompt longer than one batch, then rewind and decode", async () => {
  const engine = await gpu();
  const prompt = cpu.tokenizer.encode(Array(4).fill(STORY).join(" ")).slice(0, 100);
  assert.equal(prompt.length, 100); // past the 64-token prefill chunk
  const cs = cpu.createSession(), gs = engine.createSession();
  const want = cs.evaluate(prompt);
  const got = await gs.evaluateAsync!(prompt);
  assert.ok(maxDiff(got, want) < 1e-4, `prefill logits differ by ${maxDiff(got, want)}`);
  assert.equal(gs.position, 100);
  gs.rewind(40);
  cs.rewind(40);
  const next = await gs.evaluateAsync!([prompt[40]]);
  assert.ok(maxDiff(next, cs.evaluate([prompt[40]])) < 1e-4);
  assert.equal(await gs.evaluateGreedy!([7]), argmax(cs.evaluate([7])));
});

Deno.test("webgpu session: clear errors", async () => {
  const engine = await gpu();
  const s = engine.createSession();
  assert.throws(() => s.evaluate([1]), /evaluateAsync/);
  await assert.rejects(() => s.evaluateAsync!([999]), /token id 999 is outside the vocabulary/);
  await assert.rejects(() => s.evaluateAsync!([]), /at least one token/);
  await assert.rejects(() => s.evaluateAsync!(new Array(129).fill(1)), /context full/);
  assert.equal(s.position, 0);
  assert.throws(() => s.rewind(3), /cannot rewind to 3/);
  await assert.rejects(
    () => createWebGpuEngine({ path: STORIES, ctxSize: 2_000_000, gpu: engine.gpu }),
    /KV cache: .* exceed maxStorageBufferBindingSize/,
  );
});

Deno.test("webgpu generate: release the device memory", () => {
  gpuEngine?.close();
});
