/**
 * A WebGPU serving node's local service decodes in rounds (BatchEngine.decodeAhead): greedy
 * requests, and seeded sampling or penalized ones that the device picks for as their samplers
 * would, answer exactly as with one step a readback, on a real model, while the rounds run.
 */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "../inference/webgpu/batch-forward.ts";
import { createLocalService, type InferParams, type InferRequest } from "../mesh/mod.ts";
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
    let rounds = 0, drawnRows = 0;
    const counted = {
      ...batch,
      decodeAhead: (...args: Parameters<typeof runAhead>) => {
        rounds++;
        drawnRows += args[0].filter((row) => row.sampling).length;
        return runAhead(...args);
      },
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
    const cases: InferParams[] = [
      { temperature: 0 },
      { temperature: 0.3, seed: 11 },
      { temperature: 0.8, seed: 12 }, // llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05
      { temperature: 1.2, top_k: 64, top_p: 0.9, min_p: 0, seed: 13 },
      // penalties over the last 64 tokens (Ollama's defaults: repeat_penalty 1.1)
      { temperature: 0, repeat_penalty: 1.3, presence_penalty: 0.5 },
      { temperature: 0.8, repeat_penalty: 1.1, seed: 14 },
    ];
    for (const params of cases) {
      const req: InferRequest = {
        model: "m",
        prompt: "Once upon a time",
        params: { ...params, max_tokens: 120 },
      };
      const before = rounds, drawnBefore = drawnRows;
      const want = await text(plain, req);
      const got = await text(ahead, req);
      assert.equal(got, want, JSON.stringify(params));
      assert.ok(want.length > 100, want);
      assert.ok(rounds > before, `rounds ran for ${JSON.stringify(params)}`);
      // A sampling or penalized request's tokens are picked on the device, not guessed by the
      // argmax.
      const picked = params.temperature! > 0 || params.repeat_penalty !== undefined;
      assert.equal(drawnRows > drawnBefore, picked, JSON.stringify(params));
    }
  } finally {
    engine.close();
  }
});
