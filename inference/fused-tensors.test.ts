import assert from "node:assert/strict";
import { GgmlType } from "./ggml-type.ts";
import { openGguf, readTensorData } from "./gguf.ts";
import { needTensor } from "./weights.ts";
import { writeTestModel } from "../tests/support/test-models.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-fused-" });

Deno.test("a fused attn_qkv and gate+up ffn_up read as the separate matrices, rows in llama.cpp's order", async () => {
  const path = `${dir}/phi3.gguf`;
  await writeTestModel(path, {
    arch: "phi3",
    type: GgmlType.Q4_K,
    dense: { mix: "Q4_K_M" },
    dim: 256,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    ffn: 512,
    seed: 3,
  });
  const file = await openGguf(path);
  assert.equal(file.tensor("blk.1.attn_q.weight"), undefined, "the file holds only fused ones");
  const qkv = needTensor(file, "blk.1.attn_qkv.weight");
  const parts = ["attn_q", "attn_k", "attn_v"].map((t) => needTensor(file, `blk.1.${t}.weight`));
  assert.deepEqual(parts.map((p) => p.dims), [[256, 256], [256, 128], [256, 128]]);
  assert.ok(parts.every((p) => p.type === GgmlType.Q5_K));
  const whole = await readTensorData(file, qkv);
  const joined = new Uint8Array(whole.length);
  let at = 0;
  for (const p of parts) {
    const bytes = await readTensorData(file, p);
    joined.set(bytes, at);
    at += bytes.length;
  }
  assert.equal(at, whole.length);
  assert.deepEqual(joined, whole);

  const up = needTensor(file, "blk.1.ffn_up.weight");
  const gate = needTensor(file, "blk.1.ffn_gate.weight");
  const fused = file.tensor("blk.1.ffn_up.weight")!;
  assert.deepEqual([gate.dims, up.dims], [[256, 512], [256, 512]]);
  assert.equal(gate.offset, fused.offset, "the gate is the first half");
  assert.equal(up.offset, fused.offset + fused.byteLength / 2);
  // A tensor that is not fused reads as itself.
  assert.deepEqual(needTensor(file, "blk.1.ffn_down.weight"), file.tensor("blk.1.ffn_down.weight"));
});

Deno.test("fused tensors: clean up", () => Deno.removeSync(dir, { recursive: true }));
