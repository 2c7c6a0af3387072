// The WebGPU engine's sliding-window layers keep rings of window + 512 rows (ring-cache.ts):
// a session and two batch slots run well past the ring's wrap and agree with the CPU engine's
// whole-context cache; a rewind whose window a ring lost is refused, to 0 always works.
import assert from "node:assert/strict";
import { loadCpuModel } from "../inference/cpu-engine.ts";
import { createRunState, rewindRunState, type RunState } from "../inference/attention.ts";
import { stepLogits } from "./support/model-step.ts";
import { createBatchedWebGpuEngine } from "../inference/webgpu/batch-forward.ts";
import { ringRowsOf } from "../inference/webgpu/ring-cache.ts";
import { RewindRefusedError } from "../inference/swa-cache.ts";
import { writeGemma3F32 } from "./support/reference-models-dense.ts";
import { createTestGpu } from "./support/gpu.ts";

const CTX = 1024;
const WINDOW = 8;
const RING = WINDOW + 512;
const TOTAL = RING + 200;
const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-swa-ring-" });
const path = `${dir}/gemma3.gguf`;
// The gemma3 agreement models' shape: layer 0 local (window 8), layer 1 global.
await writeGemma3F32(path, 2048);
const cpu = await loadCpuModel({ path, ctxSize: CTX, kvType: "f32" });
const tokens = Array.from({ length: TOTAL }, (_, i) => 1 + (i * 37) % 500);

/** The CPU engine over a cache of every position (no ring): the reference. */
const cpuRun = (state: RunState, ids: readonly number[]) => stepLogits(cpu, state, ids);
const wholeCache = () => createRunState(cpu.config, cpu.weights, CTX, "f32", CTX);
/**
 * |Δ logit| allowed: f32 summation order only (the agreement harness's bound on F32 weights); a
 * ring row read for the wrong position moves the logits by far more.
 */
const TOLERANCE = 1e-3;

/** Steps of 1, window - 1, window + 3 and `wide` rows in turn over tokens [from, TOTAL). */
function chunks(from: number, shift = 0, wide = 64): number[][] {
  const sizes = [1, WINDOW - 1, WINDOW + 3, wide];
  const out: number[][] = [];
  for (let at = from, i = shift; at < TOTAL; i++) {
    const n = Math.min(sizes[i % sizes.length], TOTAL - at);
    out.push(tokens.slice(at, at + n));
    at += n;
  }
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const open = async () =>
  await createBatchedWebGpuEngine({ path, ctxSize: CTX, gpu: await createTestGpu(), maxSlots: 2 });

Deno.test("webgpu rings: the local layer's ring is window + 512 rows, the global layer keeps the context", () => {
  assert.deepEqual(ringRowsOf(cpu.config, 0, 2, CTX, 64), [RING, 0]);
  assert.deepEqual(
    ringRowsOf(cpu.config, 0, 2, RING, 64),
    [0, 0],
    "a ring of the whole context is none",
  );
});

Deno.test(`webgpu rings: a session past ${TOTAL} positions agrees with the CPU's whole cache, and rewinds only where the window is held`, async () => {
  const { engine } = await open();
  try {
    const session = engine.createSession();
    const full = wholeCache();
    let worst = 0;
    for (const chunk of chunks(0)) {
      worst = Math.max(worst, maxDiff(await session.evaluateAsync!(chunk), cpuRun(full, chunk)));
    }
    assert.ok(worst < TOLERANCE, `logits differ from the CPU engine's by ${worst}`);
    console.log(`  session: max |Δ logit| ${worst.toExponential(2)} over ${TOTAL} positions`);
    assert.throws(() => session.rewind(100), RewindRefusedError);
    assert.equal(session.position, TOTAL);
    // 180 back: the ring (520 rows) still holds that window. The same steps again agree.
    session.rewind(TOTAL - 180);
    rewindRunState(full, TOTAL - 180);
    for (const chunk of chunks(TOTAL - 180, 1)) {
      worst = Math.max(worst, maxDiff(await session.evaluateAsync!(chunk), cpuRun(full, chunk)));
    }
    session.rewind(0);
    rewindRunState(full, 0);
    for (const chunk of chunks(0).slice(0, 3)) {
      worst = Math.max(worst, maxDiff(await session.evaluateAsync!(chunk), cpuRun(full, chunk)));
    }
    assert.ok(worst < TOLERANCE, `after the rewinds, logits differ by ${worst}`);
  } finally {
    engine.close();
  }
});

Deno.test(`webgpu rings: two batch slots past ${TOTAL} positions agree with the CPU's whole caches; a lost window's rewind is refused`, async () => {
  const { engine, batch } = await open();
  try {
    const slots = [batch.acquire()!, batch.acquire()!];
    // At most 64 rows a step in all: the slots' widest steps take 32 each.
    const plans = [chunks(0, 0, 32), chunks(0, 2, 32)];
    const states = [wholeCache(), wholeCache()];
    let worst = 0;
    for (let i = 0; i < Math.max(...plans.map((p) => p.length)); i++) {
      const rows = slots.map((slot, s) => ({ s, slot, tokens: plans[s][i] }))
        .filter((r) => r.tokens !== undefined);
      const out = await batch.step(rows.map(({ slot, tokens }) => ({ slot, tokens })));
      rows.forEach((r, j) =>
        worst = Math.max(worst, maxDiff(out[j], cpuRun(states[r.s], r.tokens)))
      );
    }
    assert.ok(worst < TOLERANCE, `batched logits differ from the CPU engine's by ${worst}`);
    console.log(`  batch: max |Δ logit| ${worst.toExponential(2)} over ${TOTAL} positions`);
    assert.throws(() => batch.rewind(slots[0], 100), RewindRefusedError);
    assert.equal(batch.position(slots[0]), TOTAL);
    batch.rewind(slots[0], TOTAL - 100);
    batch.rewind(slots[1], 0);
    assert.deepEqual(slots.map((s) => batch.position(s)), [TOTAL - 100, 0]);
  } finally {
    engine.close();
  }
});
