import assert from "node:assert/strict";
import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { GPU_WEIGHT_TYPES, type GpuWeightType } from "../kernel-types.ts";
import type { ModelConfig } from "../../model-config.ts";
import { quantize } from "../../quant/mod.ts";
import { embedTokens } from "../../reference.ts";
import type { Matrix, ModelWeights } from "../../weights.ts";
import { createF32, createTestGpu, randomF32, readF32 } from "../../../tests/support/gpu.ts";
import { uploadMatrix } from "../weights.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindEmbed, prepareEmbed, writeTokenIds } from "./embed.ts";

const VOCAB = 37;

/** Random bytes: every f16 / bf16 bit pattern class shows up (subnormals, infinities, NaNs). */
function randomBytes(n: number, seed: number): Uint8Array {
  const f = randomF32(n, seed);
  return Uint8Array.from(f, (x) => Math.floor((x + 1) * 128) & 0xff);
}

function makeMatrix(type: GgmlType, cols: number, seed: number): Matrix {
  const data = type === GgmlType.F16 || type === GgmlType.BF16
    ? randomBytes(VOCAB * cols * 2, seed)
    : quantize(type, randomF32(VOCAB * cols, seed, 2), cols);
  return { name: `token_embd ${ggmlTypeName(type)}`, type, rows: VOCAB, cols, data };
}

/** Same bits, except that any NaN matches any NaN. */
function assertSameBits(got: Float32Array, want: Float32Array, label: string) {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(got[i]) && Number.isNaN(want[i])) continue;
    if (g[i] !== w[i]) {
      throw new Error(`${label}: [${i}] got ${got[i]} (0x${g[i].toString(16)}), want ${want[i]}`);
    }
  }
}

/** Row length per weight type: every type the engines compute with has a case. */
const COLS: Record<GpuWeightType, number> = {
  [GgmlType.F32]: 72,
  [GgmlType.F16]: 72,
  [GgmlType.BF16]: 70, // odd rows of 35 words: rows start mid-word
  [GgmlType.Q8_0]: 96,
  [GgmlType.Q4_0]: 96,
  [GgmlType.Q4_K]: 512,
  [GgmlType.Q5_K]: 512,
  [GgmlType.Q6_K]: 512,
  [GgmlType.Q5_0]: 96, // 66-byte rows: every other row starts mid-word
  [GgmlType.Q5_1]: 96,
  [GgmlType.IQ4_NL]: 96,
  [GgmlType.MXFP4]: 96, // 51-byte rows: rows start on every byte offset
  [GgmlType.Q2_K]: 512,
  [GgmlType.Q3_K]: 768, // 330-byte rows
  [GgmlType.IQ4_XS]: 512,
};

for (const type of GPU_WEIGHT_TYPES) {
  const cols = COLS[type];
  Deno.test(`embed ${ggmlTypeName(type)}: rows over 3 weight buffers match embedTokens bit for bit`, async () => {
    const { device } = await createTestGpu();
    await prepareEmbed(device, type);
    const m = makeMatrix(type, cols, cols + type);
    const rowBytes = m.data.length / VOCAB;
    // 13 rows per buffer: the ids below land in all three parts
    const gm = uploadMatrix(device, m, { maxBindingBytes: rowBytes * 13 + 20 });
    assert.equal(gm.parts.length, 3);
    const tokens = [0, 36, 12, 13, 5, 5, 26, 25];
    const ids = device.createBuffer({
      size: 64,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    // the ids start at slot 2 of the buffer, the rows at row 1 of the output
    writeTokenIds(device, ids, tokens, VOCAB, 2);
    const out = createF32(device, (tokens.length + 1) * cols);
    const k = bindEmbed(device, gm, { ids, out }, {
      n: tokens.length,
      idsOffset: 2,
      outOffset: cols,
    });
    submitKernels(device, [k]);
    const got = await readF32(device, out, (tokens.length + 1) * cols);
    const config = { dim: cols, vocabSize: VOCAB } as ModelConfig;
    const weights = { tokenEmbedding: m } as ModelWeights;
    assertSameBits(got.subarray(cols), embedTokens(config, weights, tokens), ggmlTypeName(type));
    assert.ok(got.subarray(0, cols).every((x) => x === 0), "row 0 untouched");
  });
}

Deno.test("embed: host ids outside the vocabulary are refused", async () => {
  const { device } = await createTestGpu();
  const ids = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  assert.throws(() => writeTokenIds(device, ids, [3, VOCAB], VOCAB), /token id 37 is outside/);
  assert.throws(() => writeTokenIds(device, ids, [-1], VOCAB), /token id -1/);
});
