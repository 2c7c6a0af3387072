import assert from "node:assert/strict";
import { createNodeApp, type NodeAppDeps } from "./app.ts";
import { fakeService } from "../tests/support/fake-service.ts";

const HOST = "127.0.0.1:9337";
const hello = JSON.stringify({ messages: [{ role: "user", content: "hi" }] });

function request(path: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
  return new Request(`http://${HOST}${path}`, { ...init, headers: { host: HOST, ...headers } });
}

/** A POST as a page's <form> or fetch(…, {mode: "no-cors"}) sends it: text/plain, no preflight. */
function pagePost(path: string, origin: string, body = hello) {
  return request(path, { origin, "content-type": "text/plain" }, { method: "POST", body });
}

function node(deps: Partial<NodeAppDeps> = {}) {
  const service = fakeService();
  return { service, app: createNodeApp({ service, ...deps }) };
}

async function refused(res: Response, code: string, ...mentions: string[]) {
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("access-control-allow-origin"), null);
  const { error } = await res.json();
  assert.equal(error.type, "permission_error");
  assert.equal(error.code, code);
  for (const m of mentions) assert.ok(error.message.includes(m), `${error.message} names ${m}`);
}

Deno.test("browser guard: a rebinding Host is refused on every route but /health", async () => {
  const { app } = node();
  for (const path of ["/api/status", "/api/availability", "/v1/models", "/metrics", "/ui"]) {
    const res = await app.fetch(request(path, { host: "rebind.example:9337" }));
    await refused(res, "host_not_allowed", '"rebind.example:9337"', "--allow-host rebind.example");
  }
  // A name that only starts like a loopback address is a name.
  await refused(
    await app.fetch(request("/api/status", { host: "127.0.0.1.evil.example:9337" })),
    "host_not_allowed",
  );
  const health = await app.fetch(request("/health", { host: "probe.internal" }));
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
});

Deno.test("browser guard: loopback names, own addresses and --allow-host names pass, any port", async () => {
  const { app } = node({
    browser: { hosts: ["grove.lan"], isOwnAddress: (name) => name === "192.0.2.2" },
  });
  for (
    const host of [
      "127.0.0.1:9337",
      "127.8.9.10",
      "localhost:8080",
      "LocalHost.",
      "dash.localhost:9337",
      "[::1]:9337",
      "grove.lan:443",
      "GROVE.LAN",
      "192.0.2.2:9337",
    ]
  ) {
    const res = await app.fetch(request("/api/status", { host }));
    assert.equal(res.status, 200, host);
    await res.body?.cancel();
  }
  await refused(
    await app.fetch(request("/api/status", { host: "192.0.2.3:9337" })),
    "host_not_allowed",
  );
});

Deno.test("browser guard: a cross-site text/plain POST is refused before it reaches the mesh", async () => {
  const { app, service } = node();
  for (const path of ["/v1/chat/completions", "/v1/completions", "/api/node/start"]) {
    const res = await app.fetch(pagePost(path, "http://evil.example"));
    await refused(
      res,
      "origin_not_allowed",
      "http://evil.example",
      "--allow-origin http://evil.example",
    );
  }
  // Another port of the same machine is another page, not the dashboard.
  await refused(
    await app.fetch(pagePost("/v1/chat/completions", "http://127.0.0.1:3000")),
    "origin_not_allowed",
  );
  await refused(
    await app.fetch(pagePost("/v1/chat/completions", "null")),
    "origin_not_allowed",
  );
  assert.equal(service.calls.length, 0);
});

/** Every POST route an agent or a page could reach, the ones agents speak added since. */
const AGENT_POSTS = [
  "/v1/messages",
  "/v1/messages/count_tokens",
  "/v1/responses",
  "/v1/embeddings",
  "/tokenize",
  "/detokenize",
  "/api/chat",
  "/api/generate",
  "/api/embed",
  "/api/show",
  "/api/models/pull",
];

Deno.test("browser guard: the agent routes refuse a cross-site page, a rebinding Host and a huge body", async () => {
  const { app, service } = node({ maxBody: 1024 });
  for (const path of AGENT_POSTS) {
    await refused(await app.fetch(pagePost(path, "http://evil.example")), "origin_not_allowed");
    const rebound = request(path, { host: "rebind.example:9337" }, { method: "POST", body: hello });
    await refused(await app.fetch(rebound), "host_not_allowed");
  }
  for (const path of AGENT_POSTS.filter((p) => !p.startsWith("/api/models"))) {
    const big = request(path, { "content-type": "application/json" }, {
      method: "POST",
      body: JSON.stringify({ input: "x".repeat(4096) }),
    });
    assert.equal((await app.fetch(big)).status, 413, path);
  }
  for (const path of ["/v1/responses/resp_1", "/props"]) {
    const res = await app.fetch(request(path, { host: "rebind.example:9337" }));
    await refused(res, "host_not_allowed");
  }
  const gone = request("/api/models/installed/x", { origin: "http://evil.example" }, {
    method: "DELETE",
  });
  await refused(await app.fetch(gone), "origin_not_allowed");
  assert.equal(service.calls.length, 0, "nothing reached the model");
});

Deno.test("browser guard: a page's request without Origin (Sec-Fetch-Site cross-site) is refused", async () => {
  const { app } = node();
  for (const site of ["cross-site", "same-site"]) {
    const res = await app.fetch(
      request("/api/status", { "sec-fetch-site": site, "sec-fetch-mode": "no-cors" }),
    );
    await refused(res, "origin_not_allowed", `Sec-Fetch-Site: ${site}`);
  }
  // Following a link to the dashboard loads a page and reads nothing: it opens.
  const visit = await app.fetch(
    request("/ui", { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" }),
  );
  assert.equal(visit.status, 200);
  await visit.body?.cancel();
});

Deno.test("browser guard: the dashboard's own requests, curl and SDKs pass without CORS headers", async () => {
  const { app, service } = node();
  const own = await app.fetch(pagePost("/v1/chat/completions", `http://${HOST}`));
  assert.equal(own.status, 200);
  assert.equal((await own.json()).object, "chat.completion");
  const ownGet = await app.fetch(request("/api/status", { "sec-fetch-site": "same-origin" }));
  assert.equal(ownGet.status, 200);
  assert.equal(ownGet.headers.get("access-control-allow-origin"), null);
  await ownGet.body?.cancel();
  // curl -d '{…}' with no content type at all, as llama.cpp's server accepts.
  const curl = await app.fetch(
    new Request(`http://${HOST}/v1/chat/completions`, {
      method: "POST",
      headers: { host: HOST },
      body: hello,
    }),
  );
  assert.equal(curl.status, 200);
  assert.equal((await curl.json()).choices[0].message.content, "Hello, world");
  assert.equal(service.calls.length, 2);
});

Deno.test("browser guard: an --allow-origin page gets CORS on preflight, answers and errors", async () => {
  const { app } = node({ apiKey: "k", browser: { origins: ["http://app.example"] } });
  const origin = "http://app.example";
  const preflight = await app.fetch(request("/v1/chat/completions", {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type, x-stainless-os",
  }, { method: "OPTIONS" }));
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), origin);
  assert.match(preflight.headers.get("access-control-allow-methods")!, /POST/);
  assert.equal(
    preflight.headers.get("access-control-allow-headers"),
    "authorization, content-type, x-stainless-os",
  );
  assert.match(preflight.headers.get("vary")!, /Origin/);

  const auth = { origin, authorization: "Bearer k", "content-type": "application/json" };
  const res = await app.fetch(request("/v1/chat/completions", auth, {
    method: "POST",
    body: hello,
  }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), origin);
  assert.match(res.headers.get("vary")!, /Origin/);
  await res.body?.cancel();
  // The page can read why it failed, too.
  const noKey = await app.fetch(request("/v1/models", { origin }));
  assert.equal(noKey.status, 401);
  assert.equal(noKey.headers.get("access-control-allow-origin"), origin);
  await noKey.body?.cancel();

  const other = await app.fetch(request("/v1/chat/completions", {
    origin: "http://evil.example",
    "access-control-request-method": "POST",
  }, { method: "OPTIONS" }));
  await refused(other, "origin_not_allowed");
});

Deno.test("browser guard: --allow-origin * opens /v1 and reads, never the node API's commands", async () => {
  const start = () => Promise.resolve({ state: "running" as const });
  const { app } = node({ browser: { origins: ["*"] }, node: { start, stop: start } });
  const page = "http://anything.example";
  const chat = await app.fetch(pagePost("/v1/chat/completions", page));
  assert.equal(chat.status, 200);
  assert.equal(chat.headers.get("access-control-allow-origin"), page);
  await chat.body?.cancel();
  const status = await app.fetch(request("/api/status", { origin: page }));
  assert.equal(status.status, 200);
  await status.body?.cancel();
  for (const path of ["/api/node/start", "/api/node/stop"]) {
    await refused(
      await app.fetch(pagePost(path, page, '{"mode":"serve"}')),
      "origin_not_allowed",
      "--allow-origin * does not reach them",
    );
  }
  const preflight = await app.fetch(request("/api/node/stop", {
    origin: page,
    "access-control-request-method": "POST",
  }, { method: "OPTIONS" }));
  await refused(preflight, "origin_not_allowed");

  // Named exactly, an origin may use them; the dashboard itself always may.
  const named = node({ browser: { origins: [page] }, node: { start, stop: start } }).app;
  assert.equal((await named.fetch(pagePost("/api/node/stop", page, ""))).status, 200);
  assert.equal((await named.fetch(pagePost("/api/node/stop", `http://${HOST}`, ""))).status, 200);
});
