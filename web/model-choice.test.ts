import assert from "node:assert/strict";
import type { AutoNeeds } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { resolveModel } from "./model-choice.ts";
import { fakeService } from "../tests/support/fake-service.ts";

const post = (path: string, body: unknown) =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** A fake mesh of two models whose "auto" answers "big" and notes what each request needed. */
function twoModels() {
  const needs: AutoNeeds[] = [];
  const service = Object.assign(
    fakeService({ models: [{ id: "small", name: "Small" }, { id: "big", name: "Big" }] }),
    {
      chooseModel(n: AutoNeeds) {
        needs.push(n);
        return Promise.resolve("big");
      },
    },
  );
  return { service, needs };
}

Deno.test("resolveModel: a name as given, the first model for none, the service's choice for auto", async () => {
  const { service, needs } = twoModels();
  const want = { features: ["tools"], tokens: 3 } as const;
  assert.equal(await resolveModel(service, "small", () => want), "small");
  assert.equal(await resolveModel(service, "", () => want), "small");
  assert.equal(await resolveModel(service, "auto", () => want), "big");
  assert.deepEqual(needs, [want]);
  // A service that cannot choose: the first model offered.
  assert.equal(await resolveModel(fakeService(), "auto", () => want), "tiny");
});

Deno.test('model "auto" on chat, completions and messages: the chosen model answers and is named', async () => {
  const { service, needs } = twoModels();
  const app = createNodeApp({ service });
  const messages = [{ role: "user", content: "x".repeat(40) }];
  const chat = await app.fetch(post("/v1/chat/completions", {
    model: "auto",
    messages,
    max_tokens: 5,
    response_format: { type: "json_object" },
  }));
  assert.equal(chat.status, 200);
  assert.equal((await chat.json()).model, "big");
  assert.deepEqual(needs[0].features, ["constraint"]);
  assert.ok(needs[0].tokens >= 15, `rough size ${needs[0].tokens}`);
  const text = await app.fetch(post("/v1/completions", { model: "auto", prompt: "hi", n: 2 }));
  assert.equal((await text.json()).model, "big");
  const anthropic = await app.fetch(
    post("/v1/messages", { model: "auto", max_tokens: 5, messages }),
  );
  assert.equal((await anthropic.json()).model, "big");
  assert.deepEqual(service.calls.map((c) => c.req.model), ["big", "big", "big", "big"]);
});
