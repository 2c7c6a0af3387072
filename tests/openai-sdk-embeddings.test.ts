/**
 * The official `openai` SDK's embeddings.create, unchanged, against a node serving stories260K in
 * process, and against a client node over a real mesh (the vectors computed by the serving node
 * and carried over /grove/infer/1): every vector has length 1, equal texts give equal vectors,
 * different texts differ, the SDK's default base64 and explicit floats agree bit for bit, and
 * `model: "auto"` names the model that answered.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService, decodeVector } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { STORIES } from "./helpers.ts";
import { servingAndClient, startMesh } from "./mesh-harness.ts";

const TEXTS = [
  "Once upon a time there was a cat",
  "The dog ran to the park",
  "Once upon a time there was a cat",
];

function checkVectors(data: OpenAI.Embedding[], dim: number): number[][] {
  assert.equal(data.length, TEXTS.length);
  const vectors = data.map((d, i) => {
    assert.equal(d.object, "embedding");
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, dim);
    const norm = Math.hypot(...d.embedding);
    assert.ok(Math.abs(norm - 1) < 1e-5, `vector ${i} has length ${norm}`);
    return d.embedding;
  });
  assert.deepEqual(vectors[0], vectors[2], "identical inputs, identical vectors");
  const diff = Math.max(...vectors[0].map((x, i) => Math.abs(x - vectors[1][i])));
  assert.ok(diff > 1e-3, `two different texts differ (max ${diff})`);
  return vectors;
}

/** Every way the SDK asks, against one base URL; returns the default (base64-decoded) vectors. */
async function embeddingSteps(sdk: OpenAI, dim: number, t: Deno.TestContext): Promise<number[][]> {
  let vectors: number[][] = [];
  await t.step("default: the SDK asks base64 and decodes it to unit vectors", async () => {
    const r = await sdk.embeddings.create({ model: "stories260K", input: TEXTS });
    assert.equal(r.object, "list");
    assert.equal(r.model, "stories260K");
    vectors = checkVectors(r.data, dim);
    assert.ok(r.usage.prompt_tokens >= TEXTS.length);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
  });
  await t.step("float and base64 round trip: the same bits", async () => {
    const floats = await sdk.embeddings.create({
      model: "stories260K",
      input: TEXTS,
      encoding_format: "float",
    });
    assert.deepEqual(floats.data.map((d) => d.embedding), vectors);
    const b64 = await sdk.embeddings.create({
      model: "stories260K",
      input: TEXTS[1],
      encoding_format: "base64",
    });
    const text = b64.data[0].embedding as unknown as string;
    assert.equal(typeof text, "string");
    assert.deepEqual(Array.from(decodeVector(text)!), vectors[1]);
  });
  await t.step("model auto names the model; dimensions other than its width is a 400", async () => {
    const r = await sdk.embeddings.create({ model: "auto", input: TEXTS[0] });
    assert.equal(r.model, "stories260K");
    assert.deepEqual(r.data[0].embedding, vectors[0]);
    await assert.rejects(
      sdk.embeddings.create({ model: "stories260K", input: "a", dimensions: 8 }),
      (e) => e instanceof OpenAI.BadRequestError && /dimensions/.test(e.message),
    );
    const chat = await sdk.chat.completions.create({
      model: "auto",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 3,
    });
    assert.equal(chat.model, "stories260K");
  });
  return vectors;
}

Deno.test("openai SDK embeddings.create against a served node, in process", async (t) => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 256 });
  const service = createLocalService({ engine, id: "stories260K" });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    createNodeApp({ service }).fetch,
  );
  try {
    const sdk = new OpenAI({
      baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
      apiKey: "unused",
      maxRetries: 0,
    });
    const vectors = await embeddingSteps(sdk, engine.config.dim, t);
    await t.step("token arrays embed as their text does", async () => {
      const ids = engine.tokenizer.encode(TEXTS[1]);
      const r = await sdk.embeddings.create({ model: "stories260K", input: [ids] });
      assert.deepEqual(r.data[0].embedding, vectors[1]);
    });
  } finally {
    await server.shutdown();
    service.close();
  }
});

Deno.test("openai SDK embeddings.create through a client node over a real mesh", async (t) => {
  const mesh = await startMesh();
  try {
    const { client } = await servingAndClient(mesh);
    const sdk = new OpenAI({ baseURL: `${client.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const local = createLocalService({
      engine: await createCpuEngine({ path: STORIES, ctxSize: 256 }),
      id: "stories260K",
    });
    const here = await local.embed!(
      { model: "stories260K", embed: { input: TEXTS } },
      new AbortController().signal,
    );
    local.close();
    const vectors = await embeddingSteps(sdk, here.data[0].length, t);
    await t.step("the serving node's vectors are the ones computed in process", () => {
      vectors.forEach((v, i) => {
        const worst = Math.max(...v.map((x, j) => Math.abs(x - here.data[i][j])));
        assert.ok(worst < 1e-6, `vector ${i} differs by ${worst}`);
      });
    });
    await t.step("Ollama's /api/embed on the client node", async () => {
      const res = await fetch(`${client.url}/api/embed`, {
        method: "POST",
        body: JSON.stringify({ model: "stories260K", input: TEXTS.slice(0, 2) }),
      });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.deepEqual(body.embeddings, vectors.slice(0, 2));
      assert.ok(body.prompt_eval_count >= 2);
    });
  } finally {
    await mesh.close();
  }
});
