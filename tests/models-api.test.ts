import assert from "node:assert/strict";
import { join } from "node:path";
import { CATALOG } from "../models/catalog.ts";
import { installedModelHooks } from "../models/mod.ts";
import { fakeService } from "./support/fake-service.ts";
import { STORIES } from "./support/fixtures.ts";
import { createNodeApp } from "../web/mod.ts";

const request = (method: string, path: string, body?: unknown, headers: HeadersInit = {}) =>
  new Request(`http://localhost${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });

Deno.test("node API: pull a model from a local server with NDJSON progress, list it, delete it", async () => {
  const bytes = await Deno.readFile(STORIES);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    assert.equal(new URL(req.url).pathname, "/m/stories260K.gguf");
    return new Response(bytes, { headers: { "content-length": String(bytes.length) } });
  });
  const home = await Deno.makeTempDir({ prefix: "grove-pull-" });
  const shelf = await Deno.makeTempDir({ prefix: "grove-shelf-" });
  try {
    await Deno.copyFile(STORIES, join(shelf, "mine.gguf"));
    const stories = CATALOG.find((e) => e.id === "stories260K")!;
    // The catalog entry as it is, only its URL on this machine: never the internet.
    const catalog = [{
      ...stories,
      url: `http://127.0.0.1:${server.addr.port}/m/stories260K.gguf`,
    }];
    const app = createNodeApp({
      service: fakeService(),
      node: installedModelHooks({ groveHome: home, modelPath: [shelf], catalog }),
    });

    const res = await app.fetch(request("POST", "/api/models/pull", { model: "stories260K" }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const progress = lines.slice(0, -1);
    assert.ok(progress.length >= 2, JSON.stringify(lines));
    for (const p of progress) {
      assert.equal(p.status, "downloading");
      assert.equal(p.total, bytes.length);
      assert.ok(p.bytes >= 0 && p.bytes <= bytes.length && p.rate >= 0);
    }
    assert.equal(progress.at(-1).bytes, bytes.length);
    const last = lines.at(-1);
    assert.equal(last.status, "installed");
    assert.equal(last.model.id, "stories260K");
    assert.equal(last.model.path, join(home, "models", "stories260K.gguf"));
    assert.deepEqual(last.model.sha256, { state: "verified", value: stories.sha256 });
    assert.equal(last.model.architecture, "llama");

    const listed = await (await app.fetch(request("GET", "/api/models/installed"))).json();
    assert.deepEqual(listed.models.map((m: { id: string }) => m.id), ["mine.gguf", "stories260K"]);

    // Commands refuse other sites' pages, as every node command does.
    const cross = await app.fetch(
      request("DELETE", "/api/models/installed/stories260K", undefined, {
        origin: "https://evil.example",
      }),
    );
    assert.equal(cross.status, 403);
    await cross.body?.cancel();

    const readOnly = await app.fetch(request("DELETE", "/api/models/installed/mine.gguf"));
    assert.equal(readOnly.status, 403);
    assert.equal((await readOnly.json()).error.code, "read_only_model");

    const deleted = await app.fetch(request("DELETE", "/api/models/installed/stories260K"));
    assert.equal(deleted.status, 200);
    assert.deepEqual((await deleted.json()).deleted.map((m: { id: string }) => m.id), [
      "stories260K",
    ]);
    const after = await (await app.fetch(request("GET", "/api/models/installed"))).json();
    // The pulled copy is gone; the one shipped with Grove stays on offer, not deletable.
    assert.deepEqual(
      after.models.map((m: { id: string; location: string }) => [m.id, m.location]),
      [["mine.gguf", "model-path"], ["stories260K", "embedded"]],
    );

    const gone = await app.fetch(request("DELETE", "/api/models/installed/stories260K"));
    assert.equal(gone.status, 403);
    assert.match((await gone.json()).error.message, /ships with Grove/);

    // An unknown model fails in the stream's last line; a missing field is a 400 before it.
    const bad = await app.fetch(request("POST", "/api/models/pull", { model: "no-such-model" }));
    const badLines = (await bad.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual([badLines.length, badLines[0].status, badLines[0].error.code], [
      1,
      "error",
      "invalid_model",
    ]);
    const missing = await app.fetch(request("POST", "/api/models/pull", {}));
    assert.equal(missing.status, 400);
    await missing.body?.cancel();
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
    await Deno.remove(shelf, { recursive: true });
  }
});
