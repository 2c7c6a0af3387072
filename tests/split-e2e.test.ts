/**
 * The split as users run it (docs/protocol.md, stages): a relay, serving nodes whose
 * `--max-memory` is too small for the model alone, and a client node, all real processes. The
 * split answers exactly as one node does, each stage reads only its share of the file, and a
 * stage that dies or freezes mid-generation costs a re-plan, not the answer.
 */
import assert from "node:assert/strict";
import {
  GgmlType,
  modelConfigOf,
  type ModelShape,
  modelShapeOf,
  openGguf,
  stageBytes,
} from "../inference/mod.ts";
import { type InferRequest, planStages } from "../mesh/mod.ts";
import { readSse } from "../web/mod.ts";
import { MODEL_PATH } from "./helpers.ts";
import {
  type Key,
  newKey,
  type NodeProcess,
  startMesh,
  waitForAvailability,
} from "./mesh-harness.ts";
import { oneNode } from "./support/one-node.ts";
import { memoryKiB } from "./support/process-memory.ts";
import { writeTestModel } from "./support/test-models.ts";
import { eventually } from "./support/poll.ts";

const STORIES = `${MODEL_PATH.split(":")[0]}/stories260K.gguf`;
const CTX = 256;

async function shapeOf(
  path: string,
  ctx: number,
): Promise<{ shape: ModelShape; whole: number; size: number }> {
  const file = await openGguf(path);
  const shape = modelShapeOf(file, modelConfigOf(file), ctx);
  const whole = stageBytes(shape, 0, shape.layerBytes.length);
  return { shape, whole, size: (await Deno.stat(path)).size };
}

/** What one whole node answers (tests/support/one-node.ts), at this file's context size. */
const singleNode = (path: string, model: string, req: Omit<InferRequest, "model">) =>
  oneNode(path, model, req, CTX);

/** What a test reads of a split candidate's /api/status. */
interface SplitStatus {
  peerId: string;
  split?: {
    reason: string | null;
    coordinatorPlanId: string | null;
    stages: { peerId: string; layers: [number, number] }[];
    loaded: { layers: [number, number]; bytesRead: number; weightBytes: number; backend: string }[];
    planId: string | null;
  };
}

async function status(node: NodeProcess): Promise<SplitStatus> {
  return await (await fetch(`${node.url}/api/status`)).json();
}

Deno.test({
  name: "split: two nodes too small for stories260K answer token for token as one node does",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { shape, whole, size } = await shapeOf(STORIES, CTX);
  // Each budget below the whole model, two together enough for it and a second scratch.
  const budget = Math.ceil((whole + shape.scratchBytes) * 0.55);
  assert.ok(budget < whole, `budget ${budget} must be below the whole model's ${whole}`);
  const plan = planStages(shape, [
    { peerId: "a", memoryBytes: budget },
    { peerId: "b", memoryBytes: budget },
  ]);
  assert.ok(plan.ok && plan.plan.stages.length === 2, "two such nodes make a 2-stage plan");

  const mesh = await startMesh();
  try {
    const [keyB, keyC] = [newKey(), newKey()];
    await mesh.addMember(keyB.pubkey);
    await mesh.addMember(keyC.pubkey);
    const flags = ["--ctx-size", String(CTX), "--max-memory", String(budget)];
    const a = await mesh.serve("stage-a", mesh.owner, flags);
    // Alone, a candidate says what it waits for.
    await eventually(async () => (await status(a)).split?.reason ?? null, {
      until: (r) => typeof r === "string" && /^waiting: .* MiB more needed/.test(r),
      timeoutMs: 10_000,
      what: "the lone candidate's status says how much memory it waits for",
    });
    const b = await mesh.serve("stage-b", keyB, flags);
    const client = await mesh.consume(keyC);
    await waitForAvailability(
      client.url,
      (x) => x.models.some((m) => m.id === "stories260K"),
      30_000,
    );

    const messages = [{ role: "user" as const, content: "Tell me a story about a cat." }];
    const res = await fetch(`${client.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "stories260K",
        messages,
        max_tokens: 48,
        temperature: 0,
        logprobs: true,
      }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const got = body.choices[0];
    const want = await singleNode(STORIES, "stories260K", {
      messages,
      params: { max_tokens: 48, temperature: 0, logprobs: true },
    });
    assert.equal(got.message.content, want.text);
    const tokens = got.logprobs.content as { token: string; logprob: number }[];
    assert.equal(tokens.length, want.ids.length, "as many tokens as one node gives");
    tokens.forEach((t, i) =>
      assert.ok(Math.abs(t.logprob - want.logprobs[i]) < 1e-4, `token ${i}`)
    );

    // Two requests at once share each step's frames (continuous batching through the stages)
    // and each still answers as one node does.
    const prompts = ["Once upon a time", "The little dog"];
    const together = await Promise.all(prompts.map(async (prompt) => {
      const r = await fetch(`${client.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "stories260K", prompt, max_tokens: 40, temperature: 0 }),
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(r.status, 200);
      return (await r.json()).choices[0].text as string;
    }));
    for (const [i, prompt] of prompts.entries()) {
      const alone = await singleNode(STORIES, "stories260K", {
        prompt,
        params: { max_tokens: 40, temperature: 0 },
      });
      assert.equal(together[i], alone.text, `concurrent request ${i}`);
    }

    // Each stage read its share of the file, not the whole file.
    const loaded = await Promise.all([a, b].map(async (n) => (await status(n)).split!.loaded));
    const reads = loaded.map((l) => {
      assert.equal(l.length, 1, JSON.stringify(l));
      return l[0].bytesRead as number;
    });
    console.log(`file ${size} bytes; stages read ${reads.join(" + ")} bytes`);
    for (const r of reads) assert.ok(r < size * 0.8, `a stage read ${r} of ${size} bytes`);
    assert.ok(reads[0] + reads[1] < size * 1.2, "together about one file's bytes");
  } finally {
    await mesh.close();
  }
});

/** The smallest equal budget with which `n` candidates make a plan (a binary search). */
function smallestBudget(shape: ModelShape, n: number): number {
  const cands = (b: number) =>
    Array.from({ length: n }, (_, i) => ({ peerId: `p${i}`, memoryBytes: b }));
  let lo = 1, hi = stageBytes(shape, 0, shape.layerBytes.length);
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (planStages(shape, cands(mid)).ok) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

Deno.test({
  name: "split: a WebGPU stage and CPU stages in one plan tell one CPU node's story",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { shape } = await shapeOf(STORIES, CTX);
  const budget = smallestBudget(shape, 3);
  const two = (b: number) => [{ peerId: "a", memoryBytes: b }, { peerId: "b", memoryBytes: b }];
  assert.equal(planStages(shape, two(budget)).ok, false, "two such nodes are not enough");
  const mesh = await startMesh();
  try {
    const keys = [mesh.owner, newKey(), newKey(), newKey()];
    for (const k of keys.slice(1)) await mesh.addMember(k.pubkey);
    const flags = ["--ctx-size", String(CTX), "--max-memory", String(budget)];
    const nodes = await Promise.all([
      mesh.serve("cpu-1", keys[0], flags),
      mesh.serve("cpu-2", keys[1], flags),
      mesh.serve("gpu", keys[2], [...flags, "--gpu"]),
    ]);
    const client = await mesh.consume(keys[3]);
    await waitForAvailability(
      client.url,
      (x) => x.models.some((m) => m.id === "stories260K"),
      60_000,
    );
    const backends = (await Promise.all(nodes.map(status))).map((s) => s.split!.loaded[0]?.backend);
    assert.deepEqual(backends, ["cpu", "cpu", "webgpu"]);

    const res = await fetch(`${client.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "stories260K",
        prompt: "Once upon a time",
        max_tokens: 48,
        temperature: 0,
        logprobs: 1,
      }),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const want = await singleNode(STORIES, "stories260K", {
      prompt: "Once upon a time",
      params: { max_tokens: 48, temperature: 0, logprobs: true },
    });
    // stories260K in F32 decodes the same greedy tokens on llvmpipe as on the CPU
    // (tests/webgpu-generate.test.ts); its logprobs differ by float rounding only.
    assert.equal(body.choices[0].text, want.text);
    const got = body.choices[0].logprobs.token_logprobs as number[];
    const worst = Math.max(...got.map((lp, i) => Math.abs(lp - want.logprobs[i])));
    console.log(`max |Δ logprob| through the WebGPU stage: ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-2, `logprobs differ by up to ${worst}`);
  } finally {
    await mesh.close();
  }
});

/**
 * A model slow enough that a generation outlasts a kill (random weights, stories260K's
 * vocabulary): 8 layers of dim 384 in F32, ~7 MB a layer.
 */
async function slowModel(dir: string): Promise<string> {
  const path = `${dir}/split-slow.gguf`;
  await writeTestModel(path, {
    arch: "llama",
    type: GgmlType.F32,
    dim: 384,
    layers: 8,
    heads: 6,
    kvHeads: 6,
    ffn: 1152,
    seed: 1,
    contextLength: 1024,
  });
  return path;
}

interface Streamed {
  text: string;
  tokens: number;
  error?: { message: string; code: string };
  done: boolean;
  /** Longest wait between two tokens, ms. */
  longestGapMs: number;
  endedAt: number;
}

async function stream(
  url: string,
  maxTokens: number,
  onToken: (n: number) => void,
): Promise<Streamed> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "split-slow",
      prompt: "Once upon a time",
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
    }),
    signal: AbortSignal.timeout(60_000), // a hang fails the test instead of stalling it
  });
  if (res.status !== 200) assert.fail(`HTTP ${res.status}: ${await res.text()}`);
  const out: Streamed = { text: "", tokens: 0, done: false, longestGapMs: 0, endedAt: 0 };
  let last = performance.now();
  for await (const data of readSse(res.body!)) {
    if (data === "[DONE]") {
      out.done = true;
      continue;
    }
    const chunk = JSON.parse(data);
    if (chunk.error) {
      out.error = chunk.error;
      continue;
    }
    const now = performance.now();
    out.longestGapMs = Math.max(out.longestGapMs, now - last);
    last = now;
    out.text += chunk.choices?.[0]?.text ?? "";
    if (chunk.choices?.[0]?.finish_reason === null) onToken(++out.tokens);
  }
  out.endedAt = performance.now();
  return out;
}

Deno.test({
  name:
    "split: a middle stage killed or frozen mid-generation fails over to a spare, else a clear error",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const mesh = await startMesh();
  try {
    const path = await slowModel(mesh.root);
    const { shape, whole } = await shapeOf(path, CTX);
    // Room for 3 of the 8 layers (and the embedding or head) each: three nodes are needed.
    const budget = Math.ceil(Math.max(stageBytes(shape, 0, 3), stageBytes(shape, 5, 8)) * 1.02);
    const cands = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ peerId: `p${i}`, memoryBytes: budget }));
    assert.ok(budget < whole);
    assert.equal(planStages(shape, cands(2)).ok, false, "two nodes are not enough");
    const three = planStages(shape, cands(3));
    assert.ok(three.ok && three.plan.stages.length === 3, "three nodes are");

    const keys: Key[] = [mesh.owner, newKey(), newKey(), newKey(), newKey()];
    for (const k of keys.slice(1)) await mesh.addMember(k.pubkey);
    const flags = ["--model", path, "--ctx-size", String(CTX), "--max-memory", String(budget)];
    // Five candidates: a 3-stage plan and two spares.
    const nodes = await Promise.all(keys.slice(0, 5).map((k, i) => mesh.serve(`c${i}`, k, flags)));
    const clientKey = newKey();
    await mesh.addMember(clientKey.pubkey);
    const client = await mesh.consume(clientKey);
    await waitForAvailability(
      client.url,
      (x) => x.models.some((m) => m.id === "split-slow"),
      60_000,
    );

    const want = await singleNode(path, "split-slow", {
      prompt: "Once upon a time",
      params: { max_tokens: 60, temperature: 0 },
    });
    const byPeer = new Map<string, NodeProcess>();
    for (const n of nodes) byPeer.set((await status(n)).peerId, n);
    /** The node holding the middle stage of the plan the coordinator uses now. */
    /** The stages' peers of the plan in use: the coordinator's, else the one all compute. */
    const planNow = async () => {
      for (const n of byPeer.values()) {
        const s = await status(n).catch(() => undefined);
        if (s?.split?.coordinatorPlanId) return s.split.stages.map((x) => x.peerId);
      }
      return (await status(nodes[0])).split!.stages.map((x) => x.peerId);
    };
    const middle = async () => byPeer.get((await planNow())[1])!;

    await t.step("a candidate joining mid-stream changes the plan, not the stream", async () => {
      const longer = await singleNode(path, "split-slow", {
        prompt: "Once upon a time",
        params: { max_tokens: 200, temperature: 0 },
      });
      const before = (await status(nodes[0])).split!.planId;
      const joiner = newKey();
      await mesh.addMember(joiner.pubkey);
      let joined: Promise<{ node: NodeProcess; at: number }> | undefined;
      const result = await stream(client.url, 200, (n) => {
        if (n !== 5) return;
        joined = (async () => {
          const node = await mesh.serve("late", joiner, flags);
          for (const each of nodes) {
            await eventually(async () => (await status(each)).split!.planId, {
              until: (id) => id !== before,
              timeoutMs: 15_000,
              what: "every candidate computes the plan with the newcomer",
            });
          }
          return { node, at: performance.now() };
        })();
      });
      const late = await joined!;
      console.log(`re-planned ${(result.endedAt - late.at).toFixed(0)} ms before the stream ended`);
      assert.ok(late.at < result.endedAt, "the mesh re-planned while the stream ran");
      assert.equal(result.error, undefined, JSON.stringify(result.error));
      assert.equal(result.text, longer.text);
      byPeer.set((await status(late.node)).peerId, late.node);
    });

    // Each run kills or freezes the middle stage after a few tokens.
    const run = async (signal: "SIGKILL" | "SIGSTOP") => {
      // After a failover the survivors agree on the new plan within a mesh status or two.
      await waitForAvailability(
        client.url,
        (x) => x.models.some((m) => m.id === "split-slow"),
        30_000,
      );
      const victim = await middle();
      let hitAt = 0;
      const result = await stream(client.url, 60, (n) => {
        if (n !== 5) return;
        victim.kill(signal);
        hitAt = performance.now();
      });
      byPeer.forEach((n, p) => n === victim && byPeer.delete(p));
      return { result, afterHitMs: result.endedAt - hitAt };
    };

    await t.step(
      "SIGKILL of the middle stage: the stream goes on on a spare, text unchanged",
      async () => {
        const { result } = await run("SIGKILL");
        console.log(`SIGKILL: longest gap between tokens ${result.longestGapMs.toFixed(0)} ms`);
        assert.equal(result.error, undefined, JSON.stringify(result.error));
        assert.equal(result.text, want.text);
        assert.ok(result.longestGapMs < 5000, `a ${result.longestGapMs} ms gap`);
      },
    );

    await t.step("SIGSTOP of the middle stage: detected and replaced, text unchanged", async () => {
      const { result } = await run("SIGSTOP");
      console.log(`SIGSTOP: longest gap between tokens ${result.longestGapMs.toFixed(0)} ms`);
      assert.equal(result.error, undefined, JSON.stringify(result.error));
      assert.equal(result.text, want.text);
      assert.ok(result.longestGapMs < 5000, `a ${result.longestGapMs} ms gap`);
    });

    await t.step("no spare left: the stream ends with a clear error within 5 s", async () => {
      // The spares leave as a user stops a node (its last report withdraws it at once).
      const staged = await planNow();
      for (const [peer, node] of [...byPeer]) {
        if (staged.includes(peer)) continue;
        node.kill("SIGTERM");
        await node.exited;
        byPeer.delete(peer);
      }
      const { result, afterHitMs } = await run("SIGKILL");
      console.log(`no spare: the stream ended ${afterHitMs.toFixed(0)} ms after the kill`);
      assert.equal(result.done, false);
      assert.equal(result.error?.code, "unavailable");
      assert.match(result.error!.message, /MiB more needed|no split plan|cannot run/);
      assert.ok(afterHitMs < 5000, `ended ${afterHitMs} ms after the kill`);
    });

    await t.step("a stage's resident memory is below a whole-model node's", async () => {
      const copy = `${mesh.root}/split-slow-whole.gguf`;
      await Deno.copyFile(path, copy);
      const wholeNode = await mesh.serve("whole", keys[0], [
        "--model",
        copy,
        "--ctx-size",
        String(CTX),
      ]);
      const stageRss = [...byPeer.values()].map((n) => memoryKiB(n.child.pid));
      const wholeRss = memoryKiB(wholeNode.child.pid);
      console.log(`RSS KiB: stages ${stageRss.join(", ")}; whole-model node ${wholeRss}`);
      for (const r of stageRss) {
        assert.ok(r < wholeRss, `a stage holds ${r} KiB, whole ${wholeRss}`);
      }
    });
  } finally {
    await mesh.close();
  }
});
