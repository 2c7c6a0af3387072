/**
 * A 16k context on a tiny generated model (CPU): with no --ctx-size the node takes the model's
 * own 16384 tokens, generation after a 12,300-token prompt agrees with llama.cpp (its
 * default f16 KV cache against Grove's, YaRN ×4 RoPE), and what the engine holds then — weights
 * and the KV cache, counted from its own arrays — is within 10 % of what the node printed.
 */
import assert from "node:assert/strict";
import {
  createRunState,
  embedTokens,
  forwardLayers,
  outputLogits,
} from "../inference/reference.ts";
import { type KvArray, kvCacheBytes, kvCapacity } from "../inference/attention.ts";
import { loadCpuModel } from "../inference/cpu-engine.ts";
import { stageWeightBytes } from "../inference/model-shape.ts";
import { openServedModel } from "../cli/served-model.ts";
import { sha256File } from "../models/download.ts";
import { LONG_CONTEXT, longPrompt, writeLongContextModel } from "./support/test-models-context.ts";
import {
  type LongContextReference,
  longContextReferencePath,
} from "./support/make-long-context-reference.ts";
import { argmax, logSoftmax } from "./support/logits.ts";

/** As tests/llama-agreement.test.ts allows for f32 weights. */
const TOLERANCE = 1e-3;
const CHUNK = 512; // prompt rows per step, as a serving node's batches

/** Bytes of every typed array reachable from `root`, each counted once (a tied head is one). */
function heldBytes(root: unknown): number {
  const seen = new Set<unknown>();
  let bytes = 0;
  const walk = (v: unknown) => {
    if (v === null || typeof v !== "object" || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      bytes += v.byteLength;
      return;
    }
    for (const child of Object.values(v)) walk(child);
  };
  walk(root);
  return bytes;
}

Deno.test("long context: a 16k context agrees with llama.cpp past position 12,000, within the printed memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-long-context-" });
  try {
    const ref: LongContextReference = JSON.parse(
      await Deno.readTextFile(longContextReferencePath()),
    );
    const path = await writeLongContextModel(`${dir}/long-context.gguf`);
    assert.equal(
      await sha256File(path),
      ref.sha256,
      "the rebuilt model differs from the one llama.cpp ran on: run " +
        "tests/support/make-long-context-reference.ts",
    );
    assert.ok(ref.promptTokens > 12_000, "the reference is past 12k positions");

    // What the node prints before loading, with no --ctx-size.
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn() {}, error() {} };
    const { header } = await openServedModel({ model: path, gpu: false, dataDir: dir }, log);
    assert.equal(header.ctxSize, LONG_CONTEXT, "the model's own length, not 4096");
    const printed = lines.find((l) => l.includes("the model needs"));
    assert.match(printed ?? "", /context 16384 tokens \(the model's own length/);
    console.log(`  the node prints: ${printed}`);

    const model = await loadCpuModel({ path });
    const { config, weights } = model;
    assert.equal(model.ctxSize, LONG_CONTEXT, "the CPU engine's default is the same");
    assert.equal(config.ropeScaling.type, "yarn");
    const state = createRunState(config, weights, model.ctxSize);
    assert.ok(kvCapacity(state) < LONG_CONTEXT / 8, "the cache starts small");

    const prompt = longPrompt(ref.promptTokens);
    let logits: Float32Array = new Float32Array(0);
    for (let at = 0; at < prompt.length; at += CHUNK) {
      const tokens = prompt.slice(at, at + CHUNK);
      const hidden = embedTokens(config, weights, tokens);
      forwardLayers(config, weights, state, hidden, tokens.length);
      logits = outputLogits(config, weights, hidden, tokens.length - 1);
    }
    let maxDiff = 0;
    const nearTies: string[] = [];
    for (const [i, step] of ref.steps.entries()) {
      const lp = logSoftmax(logits);
      const mine = argmax(lp);
      if (mine !== step.token) {
        const [first, second] = step.top;
        assert.ok(
          second[0] === mine && first[1] - second[1] < TOLERANCE,
          `position ${state.position}: Grove's greedy token ${mine}, llama.cpp's ${step.token}`,
        );
        nearTies.push(`step ${i}`);
      }
      for (const [id, want] of step.top) maxDiff = Math.max(maxDiff, Math.abs(lp[id] - want));
      const hidden = embedTokens(config, weights, [step.token]);
      forwardLayers(config, weights, state, hidden, 1);
      logits = outputLogits(config, weights, hidden, 0);
    }
    console.log(
      `  positions ${ref.promptTokens}–${state.position - 1}: ` +
        `${ref.steps.length - nearTies.length}/${ref.steps.length} greedy steps equal, ` +
        `max |Δ logprob| ${maxDiff.toExponential(2)}`,
    );
    assert.ok(nearTies.length <= 1, `near-ties taken the other way: ${nearTies.join(", ")}`);
    assert.ok(maxDiff < TOLERANCE, `log-probabilities differ from llama.cpp's by ${maxDiff}`);

    // Memory: the cache grew to the whole context, f16, as predicted; with the weights the
    // engine holds, within 10 % of the printed weights + KV cache.
    const { shape } = header;
    const predictedKv = config.layers * shape.kvBytesPerLayer;
    assert.equal(kvCapacity(state), LONG_CONTEXT);
    assert.equal(kvCacheBytes(state), predictedKv);
    assert.ok(state.keyCache.every((c: KvArray) => c instanceof Float16Array));
    const held = heldBytes(weights) + kvCacheBytes(state) + state.scores.byteLength;
    const predicted = stageWeightBytes(shape, 0, config.layers) + predictedKv;
    console.log(
      `  held ${held} bytes (weights ${heldBytes(weights)}, KV cache ${kvCacheBytes(state)}), ` +
        `predicted ${predicted}`,
    );
    assert.ok(
      Math.abs(held - predicted) <= 0.1 * predicted,
      `held ${held}, predicted ${predicted}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
