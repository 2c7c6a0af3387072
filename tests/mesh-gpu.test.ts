/**
 * `serve --gpu` through the mesh: a serving node on the WebGPU engine (llvmpipe here) answers a
 * client node's chat completion with the same greedy text as a CPU serving node.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { servingAndClient, startMesh } from "./mesh-harness.ts";

const MODEL = "stories260K";

Deno.test({
  name: "mesh: serve --gpu serves through the mesh, same greedy text as the CPU path",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  try {
    const { serving: gpuNode, client } = await servingAndClient(mesh, {
      name: "gpu-node",
      serveArgs: ["--ctx-size", "256", "--gpu"],
    });
    const ask = (baseURL: string) =>
      new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 }).completions.create({
        model: MODEL,
        prompt: "Once upon a time",
        max_tokens: 30,
        temperature: 0,
      });
    const viaMesh = await ask(`${client.url}/v1`);
    assert.match(gpuNode.stdout() + gpuNode.stderr(), /stories260K runs on webgpu/);
    assert.equal(viaMesh.usage?.completion_tokens, 30);
    assert.match(viaMesh.choices[0].text, /there was a little girl named Lily/);
  } finally {
    await mesh.close();
  }
});
