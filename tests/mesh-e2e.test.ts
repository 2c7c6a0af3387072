/**
 * The mesh end to end as users run it: a relay, serving nodes and client nodes as separate
 * processes on loopback, and the `openai` SDK, unchanged, talking to the client node.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { MESH_DENIED_MESSAGE } from "../mesh/mod.ts";
import {
  metric,
  newKey,
  servingAndClient,
  startMesh,
  waitForAvailability,
} from "./mesh-harness.ts";

const MODEL = "stories260K";
const messages = [{ role: "user" as const, content: "Once upon a time" }];

Deno.test({
  name: "mesh e2e: relay, serving and client nodes as processes; the openai SDK unchanged",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const mesh = await startMesh();
  try {
    const { serving: serveA, client } = await servingAndClient(mesh);
    const sdk = new OpenAI({ baseURL: `${client.url}/v1`, apiKey: "unused", maxRetries: 0 });

    await t.step("/v1/models lists the mesh's model", async () => {
      const ids = [];
      for await (const m of sdk.models.list()) ids.push(m.id);
      assert.deepEqual(ids, [MODEL]);
    });

    await t.step("streaming chat through the mesh, usage in the last chunk", async () => {
      const stream = await sdk.chat.completions.create({
        model: MODEL,
        messages,
        max_tokens: 20,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let usage;
      let finish;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        finish ??= chunk.choices[0]?.finish_reason ?? undefined;
        usage ??= chunk.usage ?? undefined;
      }
      assert.ok(text.length > 0, "streamed some text");
      assert.equal(finish, "length");
      assert.equal(usage?.completion_tokens, 20);
    });

    await t.step("non-stream: usage is what the serving node counted", async () => {
      const promptBefore = await metric(serveA.url, "grove_prompt_tokens_total");
      const viaMesh = await sdk.chat.completions.create({
        model: MODEL,
        messages,
        max_tokens: 12,
        temperature: 0,
      });
      const promptAfter = await metric(serveA.url, "grove_prompt_tokens_total");
      assert.equal(viaMesh.usage?.completion_tokens, 12);
      assert.equal(viaMesh.usage?.prompt_tokens, promptAfter - promptBefore);
      // The serving node answering on its own /v1 (it is its own client) says the same.
      const own = new OpenAI({ baseURL: `${serveA.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const direct = await own.chat.completions.create({
        model: MODEL,
        messages,
        max_tokens: 12,
        temperature: 0,
      });
      assert.deepEqual(viaMesh.usage, direct.usage);
      assert.equal(viaMesh.choices[0].message.content, direct.choices[0].message.content);
    });

    await t.step(
      "agents' fields through the mesh: a schema, n, logit_bias; Ollama and llama.cpp routes",
      async () => {
        // The serving node advertises what it enforces; the client sends it there.
        const schema = {
          type: "object",
          properties: { mood: { type: "string", enum: ["happy", "sad"] } },
          required: ["mood"],
          additionalProperties: false,
        };
        const r = await sdk.chat.completions.create({
          model: MODEL,
          messages,
          max_tokens: 30,
          n: 2,
          seed: 5,
          logit_bias: { "13": -100 },
          presence_penalty: 0.5,
          response_format: {
            type: "json_schema",
            json_schema: { name: "m", schema, strict: true },
          },
        });
        assert.equal(r.choices.length, 2);
        for (const c of r.choices) {
          assert.ok(["happy", "sad"].includes(JSON.parse(c.message.content!).mood));
        }
        const ollama = await fetch(`${client.url}/api/chat`, {
          method: "POST",
          body: JSON.stringify({ model: MODEL, messages, format: "json", stream: false }),
        });
        assert.equal(ollama.status, 200);
        const answer = await ollama.json();
        assert.equal(answer.done, true);
        assert.equal(typeof JSON.parse(answer.message.content), "object");
        // A client node holds no tokenizer: a serving node of the model answers for it, as it
        // answers its own callers.
        const ask = async (url: string, path: string, body?: unknown) => {
          const res = await fetch(
            `${url}${path}`,
            body === undefined ? {} : { method: "POST", body: JSON.stringify(body) },
          );
          assert.equal(res.status, 200, `${path} on ${url}`);
          return await res.json();
        };
        const tokenize = { content: "Once upon a time", add_special: true, with_pieces: true };
        const onClient = await ask(client.url, "/tokenize", tokenize);
        assert.ok(onClient.tokens.length > 3);
        assert.deepEqual(onClient, await ask(serveA.url, "/tokenize", tokenize));
        const ids = onClient.tokens.map((t: { id: number }) => t.id);
        const text = await ask(client.url, "/detokenize", { tokens: ids });
        assert.match(text.content, /Once upon a time$/);
        assert.deepEqual(text, await ask(serveA.url, "/detokenize", { tokens: ids }));
        const props = await ask(client.url, "/props");
        assert.deepEqual(props, await ask(serveA.url, "/props"));
        assert.equal(props.model_path, MODEL);
      },
    );

    await t.step("a stranger's client node answers 403 mesh_denied", async () => {
      const stranger = await mesh.consume(newKey(), false);
      const res = await fetch(`${stranger.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages }),
      });
      assert.equal(res.status, 403);
      assert.deepEqual((await res.json()).error, {
        message: MESH_DENIED_MESSAGE,
        type: "llm_auth",
        code: "mesh_denied",
      });
      stranger.kill();
    });

    await t.step("two serving nodes share 8 concurrent requests", async () => {
      const keyB = newKey();
      await mesh.addMember(keyB.pubkey);
      const serveB = await mesh.serve("node-b", keyB);
      await waitForAvailability(client.url, (a) => a.serveTargets.length === 2);
      const before = await Promise.all([serveA, serveB].map((n) => served(n.url)));
      const answers = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) => sdk.completions.create({ model: MODEL, prompt: `Once ${i}`, max_tokens: 24 }),
        ),
      );
      for (const a of answers) assert.equal(a.usage?.completion_tokens, 24);
      const after = await Promise.all([serveA, serveB].map((n) => served(n.url)));
      const counts = after.map((n, i) => n - before[i]);
      assert.equal(counts[0] + counts[1], 8);
      assert.ok(counts.every((c) => c >= 2), `both nodes served a share: ${counts}`);
    });
  } finally {
    await mesh.close();
  }
});

/** Requests a serving node answered for the mesh (its /metrics count them). */
function served(url: string): Promise<number> {
  return metric(url, "grove_inference_requests_total");
}
