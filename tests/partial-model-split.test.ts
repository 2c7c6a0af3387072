/**
 * The split of a model that is not on any node's disk (issue 11): two serving nodes too small
 * for it, started with an hf:// reference whose server answers ranges, never download it whole.
 * Each fetches the header and its own stage's bytes, and the split answers as one node does.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  modelConfigOf,
  modelShapeOf,
  openGguf,
  stageByteRanges,
  stageBytes,
} from "../inference/mod.ts";
import { normalizeRanges, rangeBytes } from "../models/byte-ranges.ts";
import { STORIES } from "./helpers.ts";
import { newKey, startMesh, waitForAvailability } from "./mesh-harness.ts";
import { oneNode } from "./support/one-node.ts";
import { rangeServer } from "./support/range-server.ts";

const CTX = 256;
// Not the fixture's name: GROVE_MODEL_PATH holds stories260K.gguf, which would be found locally.
const MODEL = "hf://grove-test/remote/remote-stories.gguf";

Deno.test({
  name: "split: two nodes fetch only their stages of a remote model and answer as one node",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const data = await Deno.readFile(STORIES);
  const file = await openGguf(STORIES);
  const shape = modelShapeOf(file, modelConfigOf(file), CTX);
  const whole = stageBytes(shape, 0, shape.layerBytes.length);
  const budget = Math.ceil((whole + shape.scratchBytes) * 0.55);
  // Hugging Face names an LFS file's sha256 in its ETag; one server per node counts its bytes.
  const etag = `"${createHash("sha256").update(data).digest("hex")}"`;
  const servers = [
    rangeServer(data, { headers: { etag } }),
    rangeServer(data, { headers: { etag } }),
  ];
  const mesh = await startMesh();
  try {
    const keyB = newKey(), keyC = newKey();
    await mesh.addMember(keyB.pubkey);
    await mesh.addMember(keyC.pubkey);
    const flags = ["--model", MODEL, "--ctx-size", String(CTX), "--max-memory", String(budget)];
    const homes = [`${mesh.root}/home-a`, `${mesh.root}/home-b`];
    const env = (i: number) => ({ GROVE_HOME: homes[i], HF_ENDPOINT: servers[i].base });
    const a = await mesh.serve("remote-a", mesh.owner, flags, env(0));
    const b = await mesh.serve("remote-b", keyB, flags, env(1));
    const client = await mesh.consume(keyC);
    await waitForAvailability(client.url, (x) => x.models.some((m) => m.id === MODEL), 30_000);

    const prompt = "Once upon a time";
    const res = await fetch(`${client.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt, max_tokens: 32, temperature: 0 }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(
      body.choices[0].text,
      (await oneNode(STORIES, MODEL, { prompt, params: { max_tokens: 32, temperature: 0 } }, CTX))
        .text,
    );

    const sent = servers.map((s) => s.bytesSent());
    console.log(`file ${data.length} bytes; the nodes fetched ${sent.join(" and ")} bytes`);
    for (const [i, node] of [a, b].entries()) {
      const status = await (await fetch(`${node.url}/api/status`)).json();
      const [start, end] = status.split.loaded[0].layers as [number, number];
      // Its stage's tensors and the header's first request (256 KiB), nothing else, never twice.
      const want = normalizeRanges([
        ...stageByteRanges(file, modelConfigOf(file), start, end),
        [0, 256 << 10],
      ]);
      assert.equal(sent[i], rangeBytes(want), `node ${i}, layers [${start}, ${end})`);
      assert.ok(servers[i].sent.every((n) => n <= 1), `node ${i} fetched no byte twice`);
      assert.ok(sent[i] < data.length);
      const path = `${homes[i]}/models/hf/grove-test/remote/main/remote-stories.gguf`;
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound, "never downloaded whole");
      assert.equal((await Deno.stat(`${path}.partial`)).size, data.length);
    }
    for (const node of [a, b]) assert.match(node.stderr(), /fetching layers \d+–\d+: .* MiB of/);
  } finally {
    await mesh.close();
    await Promise.all(servers.map((s) => s.close()));
  }
});
