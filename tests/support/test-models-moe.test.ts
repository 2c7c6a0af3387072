import assert from "node:assert/strict";
import { GgmlType, openGguf } from "../../inference/mod.ts";
import { parseTestModelArgs, writeTestModel } from "./test-models.ts";
import { moeTestModelShape } from "./reference-models-moe.ts";
import { STORIES } from "./fixtures.ts";

Deno.test("the Q4_K_M mix of a MoE test model: llama.cpp's types for an 8-expert model", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-moe-mix-" });
  try {
    const path = `${dir}/m.gguf`;
    const shape = moeTestModelShape("qwen2moe");
    await writeTestModel(path, {
      ...shape,
      type: GgmlType.Q4_K,
      moe: { ...shape.moe!, mix: "Q4_K_M" },
      seed: 2,
      vocabFrom: STORIES,
    });
    const file = await openGguf(path);
    const type = (name: string) => GgmlType[file.tensor(name)!.type];
    assert.equal(file.metadata["general.file_type"], 15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert.equal(type("token_embd.weight"), "Q4_K");
    assert.equal(type("output.weight"), "Q6_K");
    assert.equal(type("blk.0.attn_q.weight"), "Q4_K");
    assert.equal(type("blk.0.attn_k.weight"), "Q8_0");
    assert.equal(type("blk.0.attn_v.weight"), "Q8_0");
    assert.equal(type("blk.0.attn_output.weight"), "Q5_K");
    assert.equal(type("blk.0.ffn_gate_inp.weight"), "F32");
    assert.equal(type("blk.0.ffn_gate_inp_shexp.weight"), "F32");
    assert.equal(type("blk.0.ffn_gate_exps.weight"), "Q4_K");
    assert.equal(type("blk.0.ffn_up_shexp.weight"), "Q4_K");
    // use_more_bits over 4 layers: layers 2 and 3 (every third from the first eighth, the last).
    for (const [l, want] of [[0, "Q4_K"], [1, "Q4_K"], [2, "Q6_K"], [3, "Q6_K"]] as const) {
      assert.equal(type(`blk.${l}.ffn_down_exps.weight`), want, `layer ${l}`);
      assert.equal(type(`blk.${l}.ffn_down_shexp.weight`), want, `layer ${l} shared`);
    }
    assert.deepEqual(file.tensor("blk.1.ffn_down_exps.weight")!.dims, [256, 256, 8]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("test-models CLI: MoE flags", () => {
  const o = parseTestModelArgs([
    ..."--arch qwen3moe --type Q4_K --dim 256 --heads 8 --ffn 512 --experts 8".split(" "),
    ..."--expert-ffn 256 --mix q4_k_m --out x.gguf".split(" "),
  ]);
  assert.equal(o.arch, "qwen3moe");
  assert.deepEqual(o.moe, {
    experts: 8,
    used: 2,
    expertFfn: 256,
    sharedFfn: undefined,
    mix: "Q4_K_M",
  });
  const dense = parseTestModelArgs("--dim 64 --heads 4 --ffn 128 --out y.gguf".split(" "));
  assert.equal(dense.moe, undefined);
  assert.throws(
    () =>
      parseTestModelArgs("--dim 64 --heads 4 --ffn 128 --experts 4 --mix q8 --out z".split(" ")),
    /--mix takes Q4_K_M/,
  );
});
