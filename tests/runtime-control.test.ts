/**
 * Runtime control end to end (docs/http-api.md#runtime): `consume` processes on a real relay
 * start serving stories260K, stop and become clients again through POST /api/node/start and
 * /api/node/stop, without a restart, while another member's client node uses what they serve.
 */
import assert from "node:assert/strict";
import { newKey, type NodeProcess, startMesh, waitForAvailability } from "./mesh-harness.ts";
import { eventually } from "./support/poll.ts";

const MODEL = "stories260K";
const OFF = "this node is off: start it from /ui or POST /api/node/start";

const post = (url: string, body?: unknown) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function json(res: Response) {
  return { status: res.status, body: await res.json() };
}

const status = async (node: NodeProcess) =>
  (await json(await fetch(`${node.url}/api/status`))).body;
const health = async (node: NodeProcess) => json(await fetch(`${node.url}/health`));

function untilState(node: NodeProcess, state: string, timeoutMs = 20_000) {
  return eventually(() => status(node), {
    until: (s) => s.state === state,
    timeoutMs,
    intervalMs: 50,
    what: `${node.url} never reached ${state}`,
  });
}

function chat(url: string, stream: boolean, maxTokens = 12) {
  return post(`${url}/v1/chat/completions`, {
    model: MODEL,
    messages: [{ role: "user", content: "Once upon a time" }],
    max_tokens: maxTokens,
    temperature: 0,
    stream,
  });
}

/** The `data:` payloads of an SSE body, read to its end. */
async function sseData(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  seen = "",
): Promise<string[]> {
  let text = seen;
  const decoder = new TextDecoder();
  for (let step = await reader.read(); !step.done; step = await reader.read()) {
    text += decoder.decode(step.value, { stream: true });
  }
  return text.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => f.slice(6));
}

Deno.test({
  name: "runtime control: a client node starts serving, answers another member, stops and drains",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const mesh = await startMesh();
  try {
    const otherKey = newKey();
    await mesh.addMember(otherKey.pubkey);
    const [node, other] = await Promise.all([mesh.consume(), mesh.consume(otherKey)]);
    const start = (body: unknown) => post(`${node.url}/api/node/start`, body);
    const who = await status(node);

    await t.step("bad fields are 400s naming the field, before anything starts", async () => {
      const cases: [unknown, string][] = [
        [{}, "mode"],
        [{ mode: "share" }, "mode"],
        [{ mode: "serve" }, "modelId"],
        [{ mode: "serve", modelId: "" }, "modelId"],
        [{ mode: "client", modelId: MODEL }, "modelId"],
        [{ mode: "serve", modelId: MODEL, maxMemory: "lots" }, "maxMemory"],
        [{ mode: "serve", modelId: MODEL, maxMemory: -5 }, "maxMemory"],
        [{ mode: "serve", modelId: MODEL, gpu: "yes" }, "gpu"],
        [{ mode: "client", colour: "green" }, "colour"],
      ];
      for (const [body, field] of cases) {
        const { status, body: err } = await json(await start(body));
        assert.equal(status, 400, JSON.stringify(body));
        assert.equal(err.error.param, field, JSON.stringify(err));
        assert.match(err.error.message, new RegExp(field));
      }
      assert.equal((await status(node)).state, "running", "still the client it was");
    });

    await t.step("a start with a model that does not exist fails, naming it", async () => {
      const res = await json(await start({ mode: "serve", modelId: "no-such-model-xyz" }));
      assert.deepEqual(res, { status: 202, body: { state: "starting" } });
      const failed = await untilState(node, "failed");
      assert.equal(failed.health.status, "failed");
      assert.match(failed.health.reason, /no-such-model-xyz/);
      const h = await health(node);
      assert.equal(h.status, 503);
      assert.equal(h.body.status, "failed");
      assert.match(h.body.reason, /no-such-model-xyz/);
      const v1 = await json(await fetch(`${node.url}/v1/models`));
      assert.equal(v1.status, 503);
      assert.equal(v1.body.error.code, "unavailable");
    });

    await t.step(
      "it starts serving: starting (health 503, start again 409), then running",
      async () => {
        const res = await json(await start({ mode: "serve", modelId: MODEL }));
        assert.deepEqual(res, { status: 202, body: { state: "starting" } });
        // Loading, hashing and joining the mesh take far longer than one request on loopback.
        const again = await json(await start({ mode: "client" }));
        assert.equal(again.status, 409);
        assert.equal(again.body.error.code, "conflict");
        assert.match(again.body.error.message, /the node is starting \(serve stories260K\)/);
        assert.equal((await json(await post(`${node.url}/api/node/stop`))).status, 409);
        const loading = await health(node);
        const during = await status(node);
        assert.equal(loading.status, 503);
        assert.equal(loading.body.status, "loading");
        assert.equal(during.mode, "serve");
        assert.notEqual(during.progress, null, "progress while starting");

        const running = await untilState(node, "running");
        assert.deepEqual(running.health, { status: "ok", reason: null });
        assert.equal(running.modelId, MODEL);
        assert.equal(running.progress, null);
        assert.deepEqual(await health(node), { status: 200, body: { status: "ok" } });
      },
    );

    await t.step("another member's client node gets answers from it through the mesh", async () => {
      await waitForAvailability(other.url, (a) => a.models.some((m) => m.id === MODEL));
      const res = await json(await chat(other.url, false));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.choices[0].message.content.length > 0);
      assert.equal(res.body.usage.completion_tokens, 12);
    });

    await t.step("stop: a stream in flight finishes, new requests get 503, then off", async () => {
      // A stream on the node's own /v1, its first chunk read, is inside the runtime's gate.
      const streamed = await chat(node.url, true, 200);
      assert.equal(streamed.status, 200);
      const reader = streamed.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      assert.match(first, /^data: /);

      const stopped = await json(await post(`${node.url}/api/node/stop`));
      assert.deepEqual(stopped, { status: 202, body: { state: "stopping" } });
      const frames = await sseData(reader, first);
      // Well within the 10 s drain: the answer is whole, not cut by the stop.
      assert.equal(frames.at(-1), "[DONE]");
      const last = JSON.parse(frames.at(-2)!);
      assert.equal(last.choices[0].finish_reason, "length", frames.at(-2));
      assert.ok(!frames.some((f) => f.includes('"error"')), "no error frame");

      const off = await untilState(node, "off");
      assert.equal(off.modelId, null);
      assert.equal((await health(node)).body.status, "off");
      assert.equal((await health(node)).status, 503);
      const v1 = await json(await fetch(`${node.url}/v1/models`));
      assert.deepEqual(v1, {
        status: 503,
        body: { error: { message: OFF, type: "unavailable_error", code: "unavailable" } },
      });
      const late = await json(await chat(node.url, false));
      assert.equal(late.status, 503);
      assert.equal(late.body.error.message, OFF);
      // The relay withdrew the model at the node's last report: the other node no longer lists it.
      await waitForAvailability(other.url, (a) => !a.models.some((m) => m.id === MODEL));
      const models = await json(await fetch(`${other.url}/v1/models`));
      assert.deepEqual(models.body.data, []);
    });

    await t.step("and it becomes a client again, same key, without a restart", async () => {
      const res = await json(await start({ mode: "client" }));
      assert.deepEqual(res, { status: 202, body: { state: "starting" } });
      const running = await untilState(node, "running");
      assert.equal(running.mode, "client");
      assert.deepEqual([running.npub, running.peerId], [who.npub, who.peerId]);
      assert.deepEqual(await health(node), { status: 200, body: { status: "ok" } });
      assert.equal((await fetch(`${node.url}/v1/models`)).status, 200);
    });

    await t.step("a start while running switches: client → serve → client", async () => {
      assert.equal((await json(await start({ mode: "serve", modelId: MODEL }))).status, 202);
      assert.equal((await untilState(node, "running")).mode, "serve");
      await waitForAvailability(other.url, (a) => a.models.some((m) => m.id === MODEL));
      assert.equal((await json(await chat(other.url, false))).status, 200);
      assert.equal((await json(await start({ mode: "client" }))).status, 202);
      await eventually(() => status(node), {
        until: (s) => s.state === "running" && s.mode === "client",
        timeoutMs: 20_000,
        what: "the serving node never became a client",
      });
      await waitForAvailability(other.url, (a) => !a.models.some((m) => m.id === MODEL));
    });
  } finally {
    await mesh.close();
  }
});
