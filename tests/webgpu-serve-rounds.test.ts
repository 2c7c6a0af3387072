/**
 * A WebGPU serving node's local service decodes in rounds (BatchEngine.decodeAhead): greedy
 * requests, and seeded sampling ones whose picks keep agreeing with the argmax, answer exactly as
 * with one step a readback, on a real model, while the rounds run.
 */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "../inference/webgpu/batch-forward.ts";
import { createLocalService, type InferRequest } from "../mesh/mod.ts";
import { createTestGpu } from "./support/gpu.ts";
import { STORIES } from "./support/fixtures.ts";

Deno.test("WebGPU serving: rounds of decode steps give the answers plain steps give", async () => {
  const { engine, batch } = await createBatchedWebGpuEngine({
    path: STORIES,
    ctxSize: 256,
    gpu: await createTestGpu(),
    maxSlots: 4,
  });
  try {
    const runAhead = batch.decodeAhead!;
    let rounds = 0;
    const counted = {
      ...batch,
      decodeAhead: (...args: Parameters<typeof runAhead>) => (rounds++, runAhead(...args)),
    };
    const ahead = createLocalService({ engine, batch: counted, id: "m", promptReuse: false });
    const plain = createLocalService({
      engine,
      batch: { ...batch, decodeAhead: undefined },
      id: "m",
      promptReuse: false,
    });
    const text = async (service: typeof ahead, req: InferRequest) => {
      let out = "";
      for await (const e of service.infer(req, new AbortController().signal)) {
        if (e.type === "error") throw new Error(`${e.code}: ${e.message}`);
        if (e.type === "token") out += e.text;
      }
      return out;
    };
    for (const params of [{ temperature: 0 }, { temperature: 0.3, seed: 11 }]) {
      const req: InferRequest = {
        model: "m",
        prompt: "Once upon a time",
        params: { ...params, max_tokens: 120 },
      };
      const before = rounds;
      const want = await text(plain, req);
      const got = await text(ahead, req);
      assert.equal(got, want, JSON.stringify(params));
      assert.ok(want.length > 100, want);
      assert.ok(rounds > before, `rounds ran for ${JSON.stringify(params)}`);
    }
  } finally {
    engine.close();
  }
});
