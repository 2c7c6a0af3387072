import assert from "node:assert/strict";
import { createCpuEngine, type Engine } from "../inference/mod.ts";
import { createLocalService, type TokenizerRequest } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { fakeService } from "../tests/support/fake-service.ts";
import { STORIES } from "../tests/support/fixtures.ts";

let shared: Engine | undefined;
const engine = async () => shared ??= await createCpuEngine({ path: STORIES, ctxSize: 128 });

async function servingApp() {
  const e = await engine();
  const service = createLocalService({ engine: e, id: "stories260K", maxConcurrent: 3 });
  return { e, app: createNodeApp({ service, local: service.view() }) };
}

const post = (path: string, body: unknown) =>
  new Request(`http://localhost${path}`, { method: "POST", body: JSON.stringify(body) });

Deno.test("/tokenize and /detokenize use the served model's tokenizer, as llama.cpp's do", async () => {
  const { e, app } = await servingApp();
  const text = "Once upon a time, Lily";
  const res = await app.fetch(post("/tokenize", { content: text }));
  assert.equal(res.status, 200);
  const { tokens } = await res.json();
  assert.deepEqual(tokens, e.tokenizer.encode(text, { addSpecial: false }), "no BOS by default");
  const special = await (await app.fetch(post("/tokenize", { content: text, add_special: true })))
    .json();
  assert.deepEqual(special.tokens, e.tokenizer.encode(text));
  assert.equal(special.tokens[0], e.tokenizer.bos);
  const pieces = await (await app.fetch(post("/tokenize", { content: text, with_pieces: true })))
    .json();
  assert.deepEqual(pieces.tokens.map((t: { id: number }) => t.id), tokens);
  assert.equal(pieces.tokens.map((t: { piece: string }) => t.piece).join(""), ` ${text}`);
  const back = await (await app.fetch(post("/detokenize", { tokens }))).json();
  assert.deepEqual(back, { content: text });
  for (
    const [path, body, param] of [
      ["/tokenize", {}, "content"],
      ["/tokenize", { content: "a", add_special: "yes" }, "add_special"],
      ["/detokenize", { tokens: [1, 100000] }, "tokens"],
      ["/detokenize", { tokens: "1" }, "tokens"],
    ] as const
  ) {
    const bad = await app.fetch(post(path, body));
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal((await bad.json()).error.param, param);
  }
});

Deno.test("/props: context, slots, template and the defaults the OpenAI routes use", async () => {
  const { e, app } = await servingApp();
  const res = await app.fetch(new Request("http://localhost/props"));
  assert.equal(res.status, 200);
  const props = await res.json();
  assert.equal(props.default_generation_settings.n_ctx, 128);
  assert.equal(props.default_generation_settings.params.temperature, 1);
  assert.equal(props.default_generation_settings.params.top_k, 0);
  assert.equal(props.total_slots, 3);
  assert.equal(props.model_path, "stories260K", "the id, never the file's path");
  // stories260K ships no template: the node renders ChatML, and says so.
  assert.match(props.chat_template, /<\|im_start\|>/);
  assert.equal(props.bos_token, e.tokenizer.tokenText(e.tokenizer.bos!));
});

Deno.test("a node that reaches no tokenizer: 501 naming the model and where to ask", async () => {
  // A service that can ask no serving node (no `tokenizer`), as a node outside any mesh.
  const app = createNodeApp({ service: fakeService() });
  for (
    const req of [
      post("/tokenize", { content: "hi" }),
      post("/detokenize", { tokens: [1] }),
      new Request("http://localhost/props"),
    ]
  ) {
    const res = await app.fetch(req);
    assert.equal(res.status, 501);
    const { error } = await res.json();
    assert.equal(error.code, "not_implemented");
    assert.match(error.message, /holds no tokenizer for `tiny`.*ask a serving node/);
  }
});

Deno.test("a client node answers /tokenize, /detokenize and /props through a serving node of the model", async () => {
  // The client's service asks the mesh; here the serving node's own service stands in for it.
  const e = await engine();
  const serving = createLocalService({ engine: e, id: "stories260K", maxConcurrent: 3 });
  const asked: TokenizerRequest[] = [];
  const client = createNodeApp({
    service: {
      ...fakeService({ models: [{ id: "stories260K", name: "Stories" }] }),
      tokenizer: (req, signal) => (asked.push(req), serving.tokenizer(req, signal)),
    },
  });
  const { app: own } = await servingApp();
  const text = "Once upon a time, Lily";
  for (
    const [path, body] of [
      ["/tokenize", { content: text }],
      ["/tokenize", { content: text, add_special: true, with_pieces: true }],
      ["/detokenize", { tokens: e.tokenizer.encode(text) }],
    ] as const
  ) {
    const viaMesh = await client.fetch(post(path, body));
    assert.equal(viaMesh.status, 200);
    assert.deepEqual(await viaMesh.json(), await (await own.fetch(post(path, body))).json());
  }
  const props = await (await client.fetch(new Request("http://localhost/props"))).json();
  assert.deepEqual(props, await (await own.fetch(new Request("http://localhost/props"))).json());
  assert.deepEqual(asked.map((r) => r.model), new Array(4).fill("stories260K"), "the first model");

  // The serving node's refusals keep their status, and name the field.
  const badIds = await client.fetch(post("/detokenize", { tokens: [1, 100000] }));
  assert.equal(badIds.status, 400);
  assert.equal((await badIds.json()).error.param, "tokens");
  const other = await client.fetch(post("/tokenize", { content: "hi", model: "qwen" }));
  assert.equal(other.status, 404);
  assert.equal((await other.json()).error.code, "model_not_found");
  // A serving node asked about a model it does not hold asks its service (the mesh) too.
  const { app: servingNode } = await servingApp();
  const elsewhere = await servingNode.fetch(post("/tokenize", { content: "hi", model: "qwen" }));
  assert.equal(elsewhere.status, 404);
  serving.close();
});
