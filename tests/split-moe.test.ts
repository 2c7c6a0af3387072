/**
 * A mixture-of-experts model split by layers across two serving nodes (issue 15): a generated
 * qwen3moe of 8 layers, 8 experts with 2 used, in llama.cpp's Q4_K_M mix, on two nodes whose
 * `--max-memory` is too small for it alone. Its stages hold their layers' expert stacks, and the
 * split answers token for token as one node does.
 */
import assert from "node:assert/strict";
import { GgmlType, modelConfigOf, modelShapeOf, openGguf, stageBytes } from "../inference/mod.ts";
import { planStages } from "../mesh/mod.ts";
import { newKey, type NodeProcess, startMesh, waitForAvailability } from "./mesh-harness.ts";
import { oneNode } from "./support/one-node.ts";
import { writeTestModel } from "./support/test-models.ts";

const CTX = 256;
const MODEL = "split-moe";

async function moeModel(dir: string): Promise<string> {
  const path = `${dir}/${MODEL}.gguf`;
  await writeTestModel(path, {
    arch: "qwen3moe",
    type: GgmlType.Q4_K,
    dim: 512,
    layers: 8,
    heads: 8,
    kvHeads: 4,
    headDim: 64,
    ffn: 1024,
    moe: { experts: 8, used: 2, expertFfn: 512, mix: "Q4_K_M" },
    seed: 5,
    contextLength: 1024,
  });
  return path;
}

interface SplitStatus {
  split?: { loaded: { layers: [number, number] }[] };
}

async function loadedLayers(node: NodeProcess): Promise<[number, number] | undefined> {
  const status: SplitStatus = await (await fetch(`${node.url}/api/status`)).json();
  return status.split?.loaded[0]?.layers;
}

Deno.test({
  name: "split: a qwen3moe (8 experts, 2 used) on two nodes answers token for token as one node",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  try {
    const path = await moeModel(mesh.root);
    const file = await openGguf(path);
    const config = modelConfigOf(file);
    assert.equal(config.moe?.experts, 8);
    const shape = modelShapeOf(file, config, CTX);
    const whole = stageBytes(shape, 0, shape.layerBytes.length);
    // Each budget below the whole model, two together enough for it and a second scratch.
    const budget = Math.ceil((whole + shape.scratchBytes) * 0.55);
    assert.ok(budget < whole, `budget ${budget} must be below the whole model's ${whole}`);
    const plan = planStages(shape, [
      { peerId: "a", memoryBytes: budget },
      { peerId: "b", memoryBytes: budget },
    ]);
    assert.ok(plan.ok && plan.plan.stages.length === 2, "two such nodes make a 2-stage plan");

    const [keyB, keyC] = [newKey(), newKey()];
    await mesh.addMember(keyB.pubkey);
    await mesh.addMember(keyC.pubkey);
    const flags = ["--model", path, "--ctx-size", String(CTX), "--max-memory", String(budget)];
    const nodes = [
      await mesh.serve("moe-a", mesh.owner, flags),
      await mesh.serve("moe-b", keyB, flags),
    ];
    const client = await mesh.consume(keyC);
    await waitForAvailability(client.url, (x) => x.models.some((m) => m.id === MODEL), 60_000)
      .catch((e) => {
        // What the stages said while loading, for the failure message.
        throw new Error(`${e.message}\n${nodes.map((n) => n.stderr().slice(-3000)).join("\n")}`);
      });

    const prompt = "Once upon a time";
    const params = { max_tokens: 40, temperature: 0 };
    const res = await fetch(`${client.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt, ...params }),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const want = await oneNode(path, MODEL, { prompt, params }, CTX);
    assert.ok(want.ids.length >= 20, `one node gave only ${want.ids.length} tokens`);
    assert.equal(body.choices[0].text, want.text);

    // Each node holds one stage: the layers split between them, each with its expert stacks.
    const ranges = await Promise.all(nodes.map(loadedLayers));
    const sorted = ranges.map((r) => r!).sort((x, y) => x[0] - y[0]);
    assert.equal(sorted.length, 2);
    assert.deepEqual([sorted[0][0], sorted[0][1], sorted[1][1]], [0, sorted[1][0], 8]);
    assert.ok(sorted[0][1] > 0 && sorted[0][1] < 8, `stages ${JSON.stringify(sorted)}`);
    console.log(`  stages ${JSON.stringify(sorted)}: ${want.ids.length} tokens as one node`);
  } finally {
    await mesh.close();
  }
});
