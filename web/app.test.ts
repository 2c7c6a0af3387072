import assert from "node:assert/strict";
import { ServiceError } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import type { HealthState } from "./health.ts";
import type { StartOptions } from "./node-api.ts";
import { fakeService } from "../tests/support/fake-service.ts";

const get = (path: string, headers: HeadersInit = {}) =>
  new Request(`http://localhost${path}`, { headers });
const post = (path: string, body?: unknown) =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    body: body === undefined ? undefined : JSON.stringify(body),
  });

Deno.test("models: OpenAI list and single model, 404 model_not_found, 403 when denied", async () => {
  const app = createNodeApp({ service: fakeService() });
  const list = await (await app.fetch(get("/v1/models"))).json();
  assert.deepEqual(list, {
    object: "list",
    data: [{
      id: "tiny",
      object: "model",
      created: 0,
      owned_by: "grove",
      name: "Tiny",
      context_length: 64,
    }],
  });
  assert.equal((await (await app.fetch(get("/v1/models/tiny"))).json()).id, "tiny");
  const missing = await app.fetch(get("/v1/models/nope"));
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "model_not_found");

  const denied = createNodeApp({
    service: fakeService({ modelsError: new ServiceError("mesh_denied", "no ticket") }),
  });
  const res = await denied.fetch(get("/v1/models"));
  assert.equal(res.status, 403);
  assert.deepEqual(await res.json(), {
    error: {
      message: "Relay mesh denied this node — check your relay membership.",
      type: "llm_auth",
      code: "mesh_denied",
    },
  });
});

Deno.test("health: 200 ok when ready, 503 while loading", async () => {
  let state: HealthState = "loading";
  const app = createNodeApp({ service: fakeService(), health: () => state });
  const loading = await app.fetch(get("/health"));
  assert.equal(loading.status, 503);
  assert.equal((await loading.json()).status, "loading");
  state = "ok";
  const ok = await app.fetch(get("/health"));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { status: "ok" });
});

Deno.test("metrics: Prometheus text counting requests, tokens, TTFT and load", async () => {
  const service = fakeService();
  service.load = () => ({ active: 1, queued: 2 });
  const app = createNodeApp({ service });
  await app.fetch(post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] }));
  await app.fetch(post("/v1/chat/completions", { n: 3, messages: [] }));
  const res = await app.fetch(get("/metrics"));
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (
    const line of [
      'grove_http_requests_total{path="/v1/chat/completions",status="200"} 1',
      'grove_http_requests_total{path="/v1/chat/completions",status="400"} 1',
      'grove_inference_requests_total{endpoint="chat",outcome="ok"} 1',
      "grove_prompt_tokens_total 7",
      "grove_completion_tokens_total 3",
      "grove_time_to_first_token_seconds_count 1",
      'grove_request_duration_seconds_bucket{le="+Inf"} 1',
      "grove_requests_active 1",
      "grove_requests_queued 2",
    ]
  ) assert.ok(text.includes(line + "\n"), `missing: ${line}`);
  assert.match(text, /# TYPE grove_time_to_first_token_seconds histogram/);
});

Deno.test("api key: 401 without the bearer key, public /health and /ui", async () => {
  const app = createNodeApp({ service: fakeService(), apiKey: "s3cret" });
  const none = await app.fetch(get("/v1/models"));
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="grove"');
  assert.equal((await none.json()).error.code, "invalid_api_key");
  assert.equal((await app.fetch(get("/v1/models", { authorization: "Bearer nope" }))).status, 401);
  assert.equal((await app.fetch(get("/api/status"))).status, 401);
  assert.equal(
    (await app.fetch(get("/v1/models", { authorization: "Bearer s3cret" }))).status,
    200,
  );
  assert.equal((await app.fetch(get("/health"))).status, 200);
  assert.equal((await app.fetch(get("/ui"))).status, 200);
  const keyless = createNodeApp({ service: fakeService() });
  assert.equal((await keyless.fetch(get("/v1/models"))).status, 200);
});

Deno.test("unknown routes answer a JSON 404", async () => {
  const res = await createNodeApp({ service: fakeService() }).fetch(get("/v2/nothing"));
  assert.equal(res.status, 404);
  assert.match((await res.json()).error.message, /no route for GET \/v2\/nothing/);
});

Deno.test("node API: status and availability derived from the service, hooks override", async () => {
  const app = createNodeApp({ service: fakeService(), mode: "serve" });
  const status = await (await app.fetch(get("/api/status"))).json();
  assert.deepEqual(status, {
    state: "running",
    mode: "serve",
    health: { status: "ok", reason: null },
    apiBaseUrl: "http://localhost/v1",
    modelId: "tiny",
    modelName: "Tiny",
    peers: [],
  });
  const avail = await (await app.fetch(get("/api/availability"))).json();
  assert.deepEqual(avail, {
    capable: true,
    admitted: true,
    available: true,
    reason: null,
    models: [{ id: "tiny", name: "Tiny" }],
    serveTargets: [],
  });
  const denied = createNodeApp({
    service: fakeService({ modelsError: new ServiceError("mesh_denied", "not a member") }),
    node: { status: () => ({ peers: [{ peerId: "16Uiu2" }] }) },
  });
  const a2 = await (await denied.fetch(get("/api/availability"))).json();
  assert.equal(a2.admitted, false);
  assert.equal(a2.available, false);
  assert.equal(a2.reason, "not a member");
  assert.deepEqual((await (await denied.fetch(get("/api/status"))).json()).peers, [{
    peerId: "16Uiu2",
  }]);
});

Deno.test("node API: agent preset as JSON env and shell exports", async () => {
  const app = createNodeApp({ service: fakeService(), apiKey: "k'1" });
  const auth = { authorization: "Bearer k'1" };
  assert.deepEqual(await (await app.fetch(get("/api/agent-preset?model=tiny", auth))).json(), {
    OPENAI_BASE_URL: "http://localhost/v1",
    OPENAI_API_KEY: "k'1",
    OPENAI_MODEL: "tiny",
  });
  const shell = await (await app.fetch(get("/api/agent-preset?format=shell", auth))).text();
  assert.equal(
    shell,
    "export OPENAI_BASE_URL='http://localhost/v1'\nexport OPENAI_API_KEY='k'\\''1'\nexport OPENAI_MODEL='tiny'\n",
  );
  assert.equal((await app.fetch(get("/api/agent-preset?model=gpt-9", auth))).status, 404);
});

Deno.test("node API: start/stop/installed answer 501 without hooks and call them when given", async () => {
  const bare = createNodeApp({ service: fakeService() });
  for (
    const req of [
      post("/api/node/start", { mode: "serve" }),
      post("/api/node/stop"),
      get("/api/models/installed"),
    ]
  ) {
    const res = await bare.fetch(req);
    assert.equal(res.status, 501);
    assert.match((await res.json()).error.message, /not available on this node/);
  }
  const calls: unknown[] = [];
  const app = createNodeApp({
    service: fakeService(),
    node: {
      start: (o: StartOptions) => (calls.push(o), { state: "starting" as const }),
      stop: () => (calls.push("stop"), { state: "stopping" as const }),
      installedModels: () => Promise.resolve([{ id: "stories260K", size: 1185376 }]),
    },
  });
  const started = await app.fetch(
    post("/api/node/start", { mode: "serve", modelId: "stories260K" }),
  );
  assert.equal(started.status, 202);
  assert.deepEqual(await started.json(), { state: "starting" });
  assert.equal((await app.fetch(post("/api/node/start", { modelId: "x" }))).status, 400);
  const stopped = await app.fetch(post("/api/node/stop"));
  assert.equal(stopped.status, 202);
  assert.deepEqual(await stopped.json(), { state: "stopping" });
  assert.deepEqual(calls, [{ mode: "serve", modelId: "stories260K" }, "stop"]);
  assert.deepEqual(await (await app.fetch(get("/api/models/installed"))).json(), {
    models: [{ id: "stories260K", size: 1185376 }],
  });
});

Deno.test("ui: the page, its script and style come from the node itself under a strict CSP", async () => {
  const app = createNodeApp({ service: fakeService() });
  const page = await app.fetch(get("/ui"));
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  const csp = page.headers.get("content-security-policy")!;
  for (const rule of ["default-src 'none'", "script-src 'self'", "connect-src 'self'"]) {
    assert.ok(csp.includes(rule), `CSP has ${rule}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await page.text();
  assert.match(html, /<!doctype html>/);
  assert.match(html, /<script type="module" src="\/ui\/dashboard.js"><\/script>/);
  assert.doesNotMatch(html, /<script>|style="/, "no inline script or style");
  assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, "no external assets");
  for (const id of ["share", "status", "mesh", "chat", "models", "agents", "members"]) {
    assert.ok(html.includes(`<section id="${id}"`), `section #${id}`);
  }
  const script = await app.fetch(get("/ui/dashboard.js"));
  assert.match(script.headers.get("content-type")!, /^text\/javascript/);
  assert.match(await script.text(), /\/api\/status/);
  const style = await app.fetch(get("/ui/style.css"));
  assert.match(style.headers.get("content-type")!, /^text\/css/);
  await style.body?.cancel();
});
