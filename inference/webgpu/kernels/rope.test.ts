import assert from "node:assert/strict";
import { rope } from "../../reference.ts";
import type { ModelConfig } from "../../model-config.ts";
import {
  assertClose,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindRope, createRopeTable, prepareRope, type RopeStyle } from "./rope.ts";
import { type RopeScaling, ropeScalingFromMetadata } from "../../rope-scaling.ts";

interface Case {
  style: RopeStyle;
  heads: number;
  headDim: number;
  ropeDim: number;
  n: number;
  pos0: number;
  ropeBase: number;
  ropeScale: number;
  freqFactors?: Float32Array;
  offset?: number; // rows live inside a wider buffer: offset and token stride
  tokenStride?: number;
  scaling?: RopeScaling; // YaRN (ropeScale then its factor)
  atol?: number;
}

async function check(c: Case) {
  const { device } = await createTestGpu();
  await prepareRope(device, c.style);
  const stride = c.tokenStride ?? c.heads * c.headDim;
  const offset = c.offset ?? 0;
  const v = randomF32(offset + c.n * stride, c.n * 31 + c.heads, 2);
  const config = {
    ropeDim: c.ropeDim,
    ropeBase: c.ropeBase,
    ropeStyle: c.style,
    ropeScale: c.ropeScale,
    ...(c.scaling ? { ropeScaling: c.scaling } : {}),
  } as ModelConfig;
  const want = v.slice();
  for (let t = 0; t < c.n; t++) {
    rope(want, offset + t * stride, c.heads, c.headDim, c.pos0 + t, config, c.freqFactors);
  }
  const buf = uploadF32(device, v);
  const table = createRopeTable(device, c.ropeDim, c.ropeBase, c.freqFactors, c.scaling);
  submitKernels(device, [
    bindRope(device, c.style, { v: buf, table }, {
      n: c.n,
      heads: c.heads,
      headDim: c.headDim,
      ropeDim: c.ropeDim,
      pos0: c.pos0,
      ropeScale: c.ropeScale,
      offset,
      tokenStride: stride,
    }),
  ]);
  const got = await readF32(device, buf, v.length);
  assertClose(
    got,
    want,
    { atol: c.atol ?? 1e-5, rtol: 1e-4 },
    `${c.style} ${c.heads}x${c.headDim}`,
  );
  return { got, v };
}

Deno.test("rope: normal pairs, stories260K shape (headDim 8), positions up to 100", async () => {
  const { got, v } = await check({
    style: "normal",
    heads: 8,
    headDim: 8,
    ropeDim: 8,
    n: 7,
    pos0: 94,
    ropeBase: 10000,
    ropeScale: 1,
  });
  // not the identity: the rotation happened
  assert.ok(got.some((x, i) => Math.abs(x - v[i]) > 1e-3));
});

Deno.test("rope: normal pairs, headDim 64, prefill from position 0", async () => {
  await check({
    style: "normal",
    heads: 3,
    headDim: 64,
    ropeDim: 64,
    n: 9,
    pos0: 0,
    ropeBase: 500000,
    ropeScale: 1,
  });
});

Deno.test("rope: NeoX halves with partial ropeDim, linear scale and freq factors", async () => {
  const { got, v } = await check({
    style: "neox",
    heads: 5,
    headDim: 64,
    ropeDim: 32,
    n: 4,
    pos0: 60,
    ropeBase: 1000000,
    ropeScale: 4,
    freqFactors: Float32Array.from({ length: 16 }, (_, i) => 1 + i / 4),
  });
  // dims past ropeDim are untouched
  for (let t = 0; t < 4; t++) {
    for (let h = 0; h < 5; h++) {
      const o = t * 320 + h * 64;
      for (let i = 32; i < 64; i++) assert.equal(got[o + i], v[o + i]);
    }
  }
});

Deno.test("rope: NeoX inside a fused row (offset and token stride)", async () => {
  await check({
    style: "neox",
    heads: 2,
    headDim: 8,
    ropeDim: 8,
    n: 3,
    pos0: 17,
    ropeBase: 10000,
    ropeScale: 1,
    offset: 5,
    tokenStride: 40,
  });
});

const yarn = (arch: string, factor: number, originalContext: number, attnFactor?: number) =>
  ropeScalingFromMetadata(
    {
      [`${arch}.rope.scaling.type`]: "yarn",
      [`${arch}.rope.scaling.factor`]: factor,
      [`${arch}.rope.scaling.original_context_length`]: originalContext,
      ...(attnFactor === undefined ? {} : { [`${arch}.rope.scaling.attn_factor`]: attnFactor }),
    },
    arch,
    originalContext * factor,
  );

Deno.test("rope: YaRN normal pairs (ramp inside the pairs, mscale with attn_factor)", async () => {
  const { got, v } = await check({
    style: "normal",
    heads: 4,
    headDim: 64,
    ropeDim: 64,
    n: 5,
    pos0: 300,
    ropeBase: 10000,
    ropeScale: 8,
    scaling: yarn("llama", 8, 64, 1.25),
    // Angles of ~300 radians: f32 products in another order part by ~3e-5 rad.
    atol: 2e-4,
  });
  assert.ok(got.some((x, i) => Math.abs(x - v[i]) > 1e-3));
});

Deno.test("rope: YaRN NeoX with freq factors, past position 12k", async () => {
  await check({
    style: "neox",
    heads: 2,
    headDim: 16,
    ropeDim: 16,
    n: 3,
    pos0: 12_300,
    ropeBase: 1000000,
    ropeScale: 4,
    freqFactors: Float32Array.from({ length: 8 }, (_, i) => 1 + i / 8),
    scaling: yarn("qwen3", 4, 4096),
    // Angles of ~12k radians: the GPU's one f32 product and ggml's f32 steps part by ~1e-3 rad.
    atol: 5e-3,
  });
});
