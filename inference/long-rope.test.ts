import assert from "node:assert/strict";
import { ropeFactorsFor } from "./long-rope.ts";
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";

const config = { ropeScaling: { originalContext: 4096 } } as ModelConfig;
const long = new Float32Array([2, 3]), short = new Float32Array([1, 1.1]);

Deno.test("LongRoPE: long factors past the original context, short ones within it", () => {
  const weights = { ropeFactorsLong: long, ropeFactorsShort: short } as ModelWeights;
  assert.equal(ropeFactorsFor(config, weights, 4096), short);
  assert.equal(ropeFactorsFor(config, weights, 4097), long);
  assert.equal(ropeFactorsFor(config, weights, 131072), long);
});

Deno.test("LongRoPE: Llama 3.1's rope_freqs, or no factors at all, whatever the context", () => {
  const freqs = new Float32Array([1, 8]);
  assert.equal(ropeFactorsFor(config, { ropeFreqFactors: freqs } as ModelWeights, 8), freqs);
  assert.equal(ropeFactorsFor(config, {} as ModelWeights, 1 << 20), undefined);
});
