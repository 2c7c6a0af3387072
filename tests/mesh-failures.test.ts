/**
 * The mesh when things go wrong mid-generation, with real processes: a member removed while
 * its stream runs is cut off within 5 s (docs/protocol.md#revocation), and a serving node killed
 * with SIGKILL gives the client a clear error, never a hang. Generations must outlast the event, so
 * the serving node runs a generated, slower model (random weights, stories260K's vocabulary).
 */
import assert from "node:assert/strict";
import { writeSlowModel } from "./support/test-models.ts";
import { readSse } from "../web/mod.ts";
import { newKey, startMesh, waitForAvailability } from "./mesh-harness.ts";

const MODEL = "mesh-slow";

interface Streamed {
  tokens: number;
  error?: { message: string; code: string };
  done: boolean;
  endedAt: number;
}

/** Streams a long completion; `onFirst` runs once the first token arrived. */
async function streamLong(url: string, onFirst: () => void): Promise<Streamed> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 500,
      temperature: 0,
      stream: true,
    }),
    signal: AbortSignal.timeout(30_000), // a hang fails the test instead of stalling it
  });
  if (res.status !== 200) assert.fail(`HTTP ${res.status}: ${await res.text()}`);
  const out: Streamed = { tokens: 0, done: false, endedAt: 0 };
  for await (const data of readSse(res.body!)) {
    if (data === "[DONE]") {
      out.done = true;
      continue;
    }
    const chunk = JSON.parse(data);
    if (chunk.error) out.error = chunk.error;
    else if (chunk.choices?.[0]?.finish_reason === null && ++out.tokens === 1) onFirst();
  }
  out.endedAt = performance.now();
  return out;
}

Deno.test({
  name: "mesh failures: removal cuts a stream off within 5 s; a killed node is a clear error",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const mesh = await startMesh();
  try {
    const path = await writeSlowModel(`${mesh.root}/${MODEL}.gguf`);
    const [keyC, keyD] = [newKey(), newKey()];
    await mesh.addMember(keyC.pubkey);
    await mesh.addMember(keyD.pubkey);
    const serving = await mesh.serve("slow", mesh.owner, ["--model", path, "--ctx-size", "1024"]);
    const [clientC, clientD] = await Promise.all([mesh.consume(keyC), mesh.consume(keyD)]);
    for (const c of [clientC, clientD]) {
      await waitForAvailability(c.url, (a) => a.models.some((m) => m.id === MODEL));
    }

    await t.step("a member removed while streaming is cut off within 5 s", async () => {
      let removedAt = 0;
      const result = await streamLong(clientC.url, () => {
        void mesh.removeMember(keyC.pubkey).then(() => removedAt = performance.now());
      });
      assert.ok(removedAt > 0, "the removal ran");
      const cutOffMs = result.endedAt - removedAt;
      console.log(`removed member cut off ${cutOffMs.toFixed(0)} ms after the removal`);
      assert.equal(result.done, false, "the stream did not finish normally");
      assert.equal(result.error?.code, "unavailable");
      assert.ok(result.tokens > 0 && result.tokens < 500, `got ${result.tokens} tokens`);
      assert.ok(cutOffMs < 5000, `cut off after ${cutOffMs} ms`);
      // And it stays out: once the relay told it (the list, or a refused subscription), its
      // node answers mesh_denied.
      await waitForAvailability(
        clientC.url,
        (a) => (a as { admitted?: boolean }).admitted === false,
      );
      const again = await fetch(`${clientC.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, prompt: "Once", max_tokens: 4 }),
      });
      const body = await again.json();
      assert.equal(again.status, 403, JSON.stringify(body));
      assert.equal(body.error.code, "mesh_denied");
    });

    await t.step("a serving node killed mid-stream: a clear error, then 503, no hang", async () => {
      let killedAt = 0;
      const result = await streamLong(clientD.url, () => {
        serving.kill("SIGKILL");
        killedAt = performance.now();
      });
      const endedMs = result.endedAt - killedAt;
      console.log(`stream ended ${endedMs.toFixed(0)} ms after the SIGKILL`);
      assert.equal(result.done, false);
      assert.equal(result.error?.code, "unavailable");
      assert.match(result.error!.message, /serving node .* mid-generation/);
      assert.ok(endedMs < 5000, `ended after ${endedMs} ms`);
      const started = performance.now();
      const next = await fetch(`${clientD.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, prompt: "Once", max_tokens: 4 }),
        signal: AbortSignal.timeout(20_000),
      });
      const body = await next.json();
      assert.equal(next.status, 503, JSON.stringify(body));
      assert.match(body.error.message, /No serving node for `mesh-slow` answered/);
      console.log(`next request refused in ${(performance.now() - started).toFixed(0)} ms`);
    });
  } finally {
    await mesh.close();
  }
});
