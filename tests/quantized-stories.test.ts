/**
 * stories260K re-quantized by Grove's own tooling still tells a story, and its
 * logits stay close to the F32 original's (measured teacher-forced on the
 * F32 model's greedy story).
 */
import assert from "node:assert/strict";
import { createCpuEngine, type Engine, GgmlType } from "../inference/mod.ts";
import { quantizeGguf } from "./support/quantize-gguf.ts";
import { STORIES } from "./helpers.ts";
import { logSoftmax } from "./support/logits.ts";

const STEPS = 60;

function greedy(engine: Engine, steps: number): number[] {
  const session = engine.createSession();
  const tokens = [1];
  let logits = session.evaluate(tokens);
  for (let i = 0; i < steps; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    tokens.push(best);
    logits = session.evaluate([best]);
  }
  return tokens;
}

/** Per step: the logits of `engine` after each prefix of `tokens`. */
function logitsAlong(engine: Engine, tokens: number[]): Float32Array[] {
  const session = engine.createSession();
  return tokens.slice(0, -1).map((t) => session.evaluate([t]).slice());
}

function meanLogprob(engine: Engine, tokens: number[]): number {
  const all = logitsAlong(engine, tokens);
  let total = 0;
  all.forEach((logits, i) => total += logSoftmax(logits)[tokens[i + 1]]);
  return total / all.length;
}

const dir = Deno.makeTempDirSync({ prefix: "grove-quantized-" });
const f32 = await createCpuEngine({ path: STORIES, ctxSize: 128 });
const story = greedy(f32, STEPS);
const f32Logits = logitsAlong(f32, story);

// Bounds: mean KL divergence from F32 (nats per token, as llama.cpp's perplexity --kl-divergence
// reports) and the share of steps whose top token stays the same.
for (
  const [type, klAllowed, agreeAllowed] of [[GgmlType.Q8_0, 0.01, 0.95], [GgmlType.Q4_0, 0.1, 0.8]]
) {
  const name = GgmlType[type];
  Deno.test(`stories260K ${name}: fluent, and logits close to F32`, async () => {
    const path = `${dir}/stories260K-${name}.gguf`;
    await quantizeGguf(STORIES, path, type);
    const q = await createCpuEngine({ path, ctxSize: 128 });
    const own = greedy(q, STEPS);
    const text = q.tokenizer.decode(own);
    // Fluent: the F32 model itself finds the quantized model's story about as likely as its own.
    const fluency = meanLogprob(f32, own);
    const f32Fluency = meanLogprob(f32, story);
    let maxDiff = 0, sumDiff = 0, n = 0, agree = 0, kl = 0;
    logitsAlong(q, story).forEach((logits, i) => {
      const p = logSoftmax(f32Logits[i]), lq = logSoftmax(logits);
      let best = 0;
      for (let j = 0; j < logits.length; j++) {
        const d = Math.abs(logits[j] - f32Logits[i][j]);
        maxDiff = Math.max(maxDiff, d);
        sumDiff += d;
        n++;
        kl += Math.exp(p[j]) * (p[j] - lq[j]);
        if (logits[j] > logits[best]) best = j;
      }
      if (best === story[i + 1]) agree++;
    });
    kl /= STEPS;
    console.log(
      `  ${name}: ${(q.info.weightBytes / 1024).toFixed(0)} KiB of weights; logits vs F32: ` +
        `max |Δ| ${maxDiff.toFixed(3)}, mean |Δ| ${(sumDiff / n).toFixed(4)}, KL ${
          kl.toFixed(4)
        }, ` +
        `top-1 agreement ${agree}/${STEPS}; F32 model's mean logprob of its text ` +
        `${fluency.toFixed(3)} (of its own story ${f32Fluency.toFixed(3)})\n  "${text.trim()}"`,
    );
    assert.match(text, /^ ?Once upon a time/);
    assert.ok(fluency > f32Fluency - 0.5, `${name} text is not fluent: ${fluency}`);
    assert.ok(kl < klAllowed, `${name} drifts from F32: mean KL ${kl}`);
    assert.ok(agree / STEPS >= agreeAllowed, `${name} top-1 agreement ${agree}/${STEPS}`);
  });
}

Deno.test("quantized stories: clean up", () => Deno.removeSync(dir, { recursive: true }));
