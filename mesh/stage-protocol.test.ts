import assert from "node:assert/strict";
import type { ModelConfig, SampledToken, SamplerOptions, StageBatch } from "../inference/mod.ts";
import { createSampler, loadStageBatch } from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { fakeClock } from "../tests/support/fake-clock.ts";
import { type TestMesh, withMesh } from "../tests/support/p2p-test-kit.ts";
import { eventually } from "../tests/support/poll.ts";
import type { MeshNode } from "./p2p-node.ts";
import { encodeStageFrame, readStageFrames, type StageFrame } from "./stage-frames.ts";
import { planId, type StageCandidate } from "./stage-plan.ts";
import {
  localStageCall,
  openStageLink,
  serveStage,
  STAGE_PROTOCOL,
  StageFailedError,
  type StageHost,
  type StageOpen,
  type StagePick,
  StageRefusal,
  type StageStepRow,
} from "./stage-protocol.ts";

// --- A stage that does real arithmetic: each layer mixes a row with its slot's past rows. ---

const DIM = 8;
const LAYERS = 4;
const VOCAB = 16;

interface FakeStage extends StageBatch {
  /** Slots held now. */
  held(): number;
  /** While set, forward never finishes (a stopped process). */
  stall: boolean;
}

function fakeStage(layerStart: number, layerEnd: number, maxSlots = 4): FakeStage {
  const caches = new Map<number, number[][]>(); // slot → per layer, row sums so far
  const config = {
    arch: "llama",
    name: "fake",
    dim: DIM,
    layers: LAYERS,
    heads: 1,
    kvHeads: 1,
    headDim: DIM,
    valueDim: DIM,
    ffn: DIM,
    vocabSize: VOCAB,
    contextLength: 64,
  } as ModelConfig;
  const stage: FakeStage = {
    config,
    metadata: {},
    get tokenizer(): never {
      throw new Error("the fake has no tokenizer");
    },
    layerStart,
    layerEnd,
    ctxSize: 64,
    maxSlots,
    maxRows: 64,
    info: { backend: "cpu", adapter: "fake", weightBytes: 0, bytesRead: 0, loadMs: 0 },
    stall: false,
    held: () => caches.size,
    acquire() {
      for (let s = 0; s < maxSlots; s++) {
        if (!caches.has(s)) {
          caches.set(s, []);
          return s;
        }
      }
      return undefined;
    },
    release: (slot) => void caches.delete(slot),
    position: (slot) => caches.get(slot)!.length,
    rewind(slot, position) {
      caches.get(slot)!.length = position;
    },
    embed(tokens) {
      if (layerStart !== 0) throw new Error("not stage 0");
      const out = new Float32Array(tokens.length * DIM);
      tokens.forEach((t, i) => {
        for (let j = 0; j < DIM; j++) out[i * DIM + j] = t * 0.1 + j * 0.01;
      });
      return Promise.resolve(out);
    },
    forward(rows, hidden) {
      if (stage.stall) return new Promise(() => {});
      let r = 0;
      for (const { slot, count } of rows) {
        const cache = caches.get(slot)!;
        for (let k = 0; k < count; k++, r++) {
          const past = cache.reduce((sum, row) => sum + row[0], 0);
          const sums: number[] = [];
          for (let l = layerStart; l < layerEnd; l++) {
            for (let j = 0; j < DIM; j++) {
              const at = r * DIM + j;
              hidden[at] = Math.fround(hidden[at] * 0.9 + (l + 1) * 0.05 + past * 0.01);
            }
            sums.push(hidden[r * DIM]);
          }
          cache.push(sums);
        }
      }
      return Promise.resolve();
    },
    logits(hidden, rows) {
      if (layerEnd !== LAYERS) throw new Error("not the last stage");
      return Promise.resolve(rows.map((r) => {
        const out = new Float32Array(VOCAB);
        for (let v = 0; v < VOCAB; v++) out[v] = Math.sin((v + 1) * 7 * hidden[r * DIM + v % DIM]);
        return out;
      }));
    },
    close() {},
  };
  return stage;
}

// --- The same steps run in process, the reference the links must match. ---

interface LocalSession {
  slots: number[];
  sampler?: ReturnType<typeof createSampler>;
  history: number[];
}

function localPipeline(stages: StageBatch[]) {
  const sessions = new Map<string, LocalSession>();
  return {
    async step(rows: StageStepRow[]) {
      for (const row of rows) {
        if (sessions.has(row.session)) continue;
        const init = { ...row.open!.sampler, rngState: row.open!.rngState };
        sessions.set(row.session, {
          slots: stages.map((s) => s.acquire()!),
          sampler: createSampler(init),
          history: [],
        });
      }
      const hiddens: Float32Array[] = [];
      let hidden = await stages[0].embed(rows.flatMap((r) => r.tokens));
      for (let i = 0; i < stages.length; i++) {
        const slots = rows.map((r) => ({
          slot: sessions.get(r.session)!.slots[i],
          count: r.tokens.length,
        }));
        hidden = hidden.slice();
        await stages[i].forward(slots, hidden);
        hiddens.push(hidden);
      }
      let end = 0;
      const picks: (StagePick | null)[] = [];
      for (const row of rows) {
        end += row.tokens.length;
        const s = sessions.get(row.session)!;
        s.history.push(...row.tokens);
        if (!row.sample) {
          picks.push(null);
          continue;
        }
        const [logits] = await stages.at(-1)!.logits(hidden, [end - 1]);
        const token: SampledToken = s.sampler!.sample(logits, s.history);
        const pick: StagePick = { session: row.session, id: token.id, logprob: token.logprob };
        if (token.topLogprobs) pick.top = token.topLogprobs.map((t) => [t.id, t.logprob]);
        pick.rng = s.sampler!.rngState();
        picks.push(pick);
      }
      return { hiddens, picks };
    },
  };
}

// --- Mesh plumbing. ---

const SHA = "ab".repeat(32);

function openFor(candidates: StageCandidate[], range: [number, number]): StageOpen {
  return { planId: planId(candidates), sha256: SHA, candidates, ctxSize: 64, range };
}

/** A host that checks the plan id and serves `stage`, counting the leases out. */
function hostOf(stage: StageBatch, leases = { out: 0 }): StageHost {
  return {
    open(req) {
      if (req.planId !== planId(req.candidates)) {
        return Promise.reject(new StageRefusal("plan_mismatch", "the plan id does not match"));
      }
      leases.out++;
      return Promise.resolve({ batch: stage, release: () => void leases.out-- });
    },
  };
}

const target = (n: MeshNode) => ({ peerId: n.peerId, addrs: n.directAddrs() });

async function stageNode(mesh: TestMesh, stage: StageBatch, leases = { out: 0 }) {
  const node = await mesh.node();
  await serveStage(node, hostOf(stage, leases));
  return node;
}

/** A row that does not sample, unless `more` says so. */
const row = (
  session: string,
  tokens: number[],
  more: Partial<StageStepRow> = {},
): StageStepRow => ({
  session,
  tokens,
  sample: false,
  ...more,
});

const GREEDY: SamplerOptions = { temperature: 0, seed: 1 };
const CREATIVE: SamplerOptions = { temperature: 0.9, topK: 8, seed: 7, topLogprobs: 3 };

/** Each session's next row: the token it was last given. */
function decodeRows(picks: Map<string, number>): StageStepRow[] {
  return [...picks].map(([session, token]) => ({ session, tokens: [token], sample: true }));
}

Deno.test("a two-stage chain through links gives the hidden states and picks of the stages run in process", async () => {
  await withMesh(async (mesh) => {
    const [s0, s1] = [fakeStage(0, 2), fakeStage(2, 4)];
    const [b, c] = [await stageNode(mesh, s0), await stageNode(mesh, s1)];
    const a = await mesh.node();
    const candidates = [b, c].map((n) => ({ peerId: n.peerId, memoryBytes: 100 }));
    const link0 = await openStageLink(a, target(b), openFor(candidates, [0, 2]));
    const link1 = await openStageLink(a, target(c), openFor(candidates, [2, 4]));
    assert.deepEqual([link0.range, link0.dim, link0.maxRows, link0.maxSlots], [[0, 2], DIM, 64, 4]);
    const local = localPipeline([fakeStage(0, 2), fakeStage(2, 4)]);

    // Two sessions' rows in each frame: one prompt in one row, one in two chunks.
    const steps: StageStepRow[][] = [
      [
        { session: "g", tokens: [1, 2, 3], sample: true, open: { sampler: GREEDY } },
        { session: "c", tokens: [4, 5], sample: false, open: { sampler: CREATIVE } },
      ],
      [{ session: "c", tokens: [6, 7], sample: true }],
    ];
    const last = new Map<string, number>();
    for (let i = 0; i < 8; i++) {
      const rows = steps[i] ?? decodeRows(last);
      const mid = await link0.step(rows);
      assert.ok("hidden" in mid);
      const end = await link1.step(rows, mid.hidden);
      assert.ok("picks" in end);
      const want = await local.step(rows);
      assert.deepEqual(mid.hidden, want.hiddens[0], `stage 0's hidden states at step ${i}`);
      assert.deepEqual(end.picks, want.picks, `the picks at step ${i}`);
      for (const p of end.picks) if (p) last.set(p.session, p.id);
      const creative = end.picks.find((p) => p?.session === "c");
      if (creative) assert.equal(creative.top?.length, 3, "alternatives are reported");
    }
    assert.equal(last.size, 2);
  });
});

Deno.test("a stage held in process steps like a link, and destroy frees its sessions and its lease", async () => {
  const stage = fakeStage(2, 4, 2);
  let released = 0;
  const call = localStageCall({ batch: stage, release: () => void released++ }, "self");
  assert.deepEqual([call.peerId, call.range], ["self", [2, 4]]);
  const local = localPipeline([fakeStage(0, 2), fakeStage(2, 4)]);
  const s0 = fakeStage(0, 2);
  const rows = [row("g", [1, 2], { sample: true, open: { sampler: CREATIVE } })];
  const hidden = await s0.embed([1, 2]);
  await s0.forward([{ slot: s0.acquire()!, count: 2 }], hidden);
  const out = await call.step(rows, hidden);
  assert.deepEqual(out, { picks: (await local.step(rows)).picks });
  await assert.rejects(call.step(rows, new Float32Array(3)), /carries 3 f32 values/);
  assert.equal(stage.held(), 1);
  call.destroy();
  call.destroy();
  assert.deepEqual([stage.held(), released], [0, 1]);
  await assert.rejects(call.step(rows, hidden), /destroyed/);
});

Deno.test("a session opened with a pick's rng state draws what the original would have drawn", async () => {
  await withMesh(async (mesh) => {
    const whole = fakeStage(0, 4);
    const b = await stageNode(mesh, whole);
    const a = await mesh.node();
    const link = await openStageLink(a, target(b), openFor([], [0, 4]));
    const open = { sampler: CREATIVE };
    const first = await link.step([{ session: "x", tokens: [1, 2], sample: true, open }]);
    assert.ok("picks" in first);
    const rng = first.picks[0]!.rng;
    assert.ok(rng, "the last stage reports its RNG state");
    // The original goes on; a copy replays the same tokens and continues from the state.
    const next = (r: StageStepRow[]) => link.step(r).then((x) => "picks" in x ? x.picks : []);
    const id = first.picks[0]!.id;
    const go = await next([{ session: "x", tokens: [id], sample: true }]);
    await next([{ session: "y", tokens: [1, 2], sample: false, open: { ...open, rngState: rng } }]);
    const copy = await next([{ session: "y", tokens: [id], sample: true }]);
    assert.deepEqual({ ...copy[0], session: "x" }, go[0]);
  });
});

Deno.test("an open the stage refuses reaches the client as a StageRefusal with the stage's code and reason", async () => {
  await withMesh(async (mesh) => {
    const leases = { out: 0 };
    const b = await stageNode(mesh, fakeStage(0, 2), leases);
    const a = await mesh.node();
    const bad = {
      ...openFor([{ peerId: b.peerId, memoryBytes: 1 }], [0, 2]),
      planId: "0".repeat(64),
    };
    const err = await openStageLink(a, target(b), bad).catch((e) => e);
    assert.ok(err instanceof StageRefusal, String(err));
    assert.equal(err.code, "plan_mismatch");
    assert.match(err.message, /plan id does not match/);
    // A range the node does not run is a mismatch too.
    const wrong = await openStageLink(a, target(b), openFor([], [0, 3])).catch((e) => e);
    assert.equal(wrong.code, "plan_mismatch");
    assert.match(wrong.message, /runs layers 0–2, not 0,3/);
    assert.equal(leases.out, 0, "a refused open holds no stage");
  });
});

Deno.test("a stage that stops answering fails the step within ~3 s and the link is dead", async () => {
  await withMesh(async (mesh) => {
    const stage = fakeStage(0, 2);
    const b = await stageNode(mesh, stage);
    const a = await mesh.node();
    const link = await openStageLink(a, target(b), openFor([], [0, 2]));
    await link.step([row("s", [1], { open: { sampler: GREEDY } })]);
    stage.stall = true;
    const started = performance.now();
    const pending = [
      link.step([row("s", [2])]),
      link.step([row("s", [3])]),
    ];
    for (const p of pending) {
      const err = await p.catch((e) => e);
      assert.ok(err instanceof StageFailedError, String(err));
      assert.equal(err.code, "timeout");
    }
    const took = performance.now() - started;
    assert.ok(took >= 2900 && took < 5000, `failed after ${took.toFixed(0)} ms`);
    assert.ok(link.dead);
    await assert.rejects(link.step([row("s", [4])]), StageFailedError);
  });
});

Deno.test("a stage node that goes away fails the pending step at once", async () => {
  await withMesh(async (mesh) => {
    const stage = fakeStage(0, 2);
    const b = await stageNode(mesh, stage);
    const a = await mesh.node();
    const link = await openStageLink(a, target(b), openFor([], [0, 2]));
    stage.stall = true;
    // Caught at once: the step may fail while b is still stopping.
    const pending = link.step([row("s", [1], { open: { sampler: GREEDY } })]).catch((e) => e);
    const started = performance.now();
    await b.stop();
    const err = await pending;
    assert.ok(err instanceof StageFailedError && err.code === "closed", String(err));
    assert.ok(performance.now() - started < 2500, "detected by the stream, not the deadline");
    assert.ok(link.dead);
  });
});

Deno.test("close and the end of the stream free the sessions' slots; a full stage answers busy and goes on", async () => {
  await withMesh(async (mesh) => {
    const stage = fakeStage(0, 2, 2);
    const leases = { out: 0 };
    const b = await stageNode(mesh, stage, leases);
    const a = await mesh.node();
    const link = await openStageLink(a, target(b), openFor([], [0, 2]));
    const open = { sampler: GREEDY };
    await link.step([row("p", [1], { open }), row("q", [2], { open })]);
    assert.equal(stage.held(), 2);
    // No slot for r: refused whole, p's row included, and nothing changes.
    const busy = await link.step([row("p", [3]), row("r", [1], { open })]).catch((e) => e);
    assert.ok(busy instanceof StageFailedError && busy.code === "busy", String(busy));
    assert.ok(!link.dead);
    assert.equal(stage.held(), 2);
    link.close(["q"]);
    await eventually(() => stage.held() === 1, { what: "close did not free q's slot" });
    await link.step([row("p", [3]), row("r", [1], { open })]);
    assert.equal(stage.held(), 2);
    link.destroy();
    assert.ok(link.dead);
    await eventually(() => stage.held() === 0 && leases.out === 0, {
      what: "the closed stream kept its slots or its lease",
    });
  });
});

Deno.test("idle sessions are freed after 60 s", async () => {
  await withMesh(async (mesh) => {
    const clock = fakeClock();
    const stage = fakeStage(0, 2);
    const b = await mesh.node();
    await serveStage(b, hostOf(stage), undefined, { clock });
    const a = await mesh.node();
    const link = await openStageLink(a, target(b), openFor([], [0, 2]));
    const open = { sampler: GREEDY };
    await link.step([row("old", [1], { open }), row("new", [1], { open })]);
    await clock.advance(40_000);
    await link.step([row("new", [2])]);
    await clock.advance(21_000);
    assert.equal(stage.held(), 2, "the sweep at 60 s keeps a session idle for exactly 60 s");
    await clock.advance(15_000); // the next sweep
    assert.equal(stage.held(), 1, "the idle session is freed, the active one kept");
    const err = await link.step([row("old", [2])]).catch((e) => e);
    assert.ok(err instanceof StageFailedError && err.code === "invalid_request", String(err));
    assert.match(err.message, /session old is not open here/);
  });
});

// --- Frames a stage cannot read. ---

async function rawStage(a: MeshNode, b: MeshNode) {
  const stream = await a.dialProtocol(b.peerId, b.directAddrs(), STAGE_PROTOCOL);
  const frames: StageFrame[] = [];
  const done = (async () => {
    for await (const f of readStageFrames(stream, () => 1 << 20)) frames.push(f);
  })();
  return { stream, frames, done };
}

const opening = encodeStageFrame({ type: "open", ...openFor([], [2, 4]), hidden: "f32" });
const stepFrame = (rows: unknown[], values: number) =>
  encodeStageFrame({ type: "step", seq: 0, rows }, new Float32Array(values));

function errorOf(frames: StageFrame[]): Record<string, unknown> {
  const last = frames.at(-1)?.header as Record<string, unknown> | undefined;
  assert.equal(last?.type, "error", JSON.stringify(frames.map((f) => f.header)));
  return last;
}

Deno.test("garbage, oversized and malformed frames get an error frame and a closed stream, and the stage goes on", async () => {
  await withMesh(async (mesh) => {
    const stage = fakeStage(2, 4);
    const b = await stageNode(mesh, stage);
    const a = await mesh.node();
    const cases: [string, Uint8Array[], RegExp][] = [
      [
        "a header length past its frame",
        [Uint8Array.of(5, 0x68, 0x65, 0x6c, 0x6c, 0x6f)],
        /runs past/,
      ],
      ["a header that is no JSON", [Uint8Array.of(3, 2, 0x7b, 0x7b)], /not UTF-8 JSON/],
      ["an open over 1 MiB", [Uint8Array.of(0x80, 0x80, 0x80, 0x08)], /over the \d+-byte limit/],
      [
        "a step before the open",
        [encodeStageFrame({ type: "step", seq: 0, rows: [] })],
        /first frame/,
      ],
      ["a bad open", [encodeStageFrame({ type: "open", range: [0, 2] })], /planId/],
      ["a step with too few hidden values", [
        opening,
        stepFrame([row("s", [1], { open: { sampler: GREEDY } })], DIM - 1),
      ], /carries 7 f32 values; expected 8/],
      ["a token outside the vocabulary", [
        opening,
        stepFrame([row("s", [VOCAB], { open: { sampler: GREEDY } })], DIM),
      ], /outside the vocabulary/],
      ["an unknown sampler option", [
        opening,
        stepFrame([{ session: "s", tokens: [1], open: { sampler: { temp: 1 } } }], DIM),
      ], /sampler.temp is not a sampler option/],
      ["a payload that is not whole f32 values", [
        opening,
        Uint8Array.of(4, 2, 0x7b, 0x7d, 0),
      ], /not f32 values/],
    ];
    for (const [what, bytes, why] of cases) {
      const raw = await rawStage(a, b);
      for (const chunk of bytes) raw.stream.send(chunk);
      await raw.done.catch(() => {}); // the stage closes (or resets) its end after the error
      const err = errorOf(raw.frames);
      assert.equal(err.code, "invalid_request", what);
      assert.match(String(err.message), why, what);
      if (raw.stream.status === "open") raw.stream.abort(new Error("done"));
    }
    await eventually(() => stage.held() === 0, { what: "a refused step kept its slot" });
    // The node still serves a well-behaved link.
    const link = await openStageLink(a, target(b), openFor([], [2, 4]));
    const out = await link.step([{
      session: "s",
      tokens: [1],
      sample: true,
      open: { sampler: GREEDY },
    }], new Float32Array(DIM));
    assert.ok("picks" in out && out.picks[0]?.session === "s");
  });
});

// --- The codec alone. ---

/** `bytes` in chunks of `size` at odd offsets: the reader must not view a payload in place. */
async function* chunked(bytes: Uint8Array, size: number) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

Deno.test("stage frames carry a header and f32 payload across any chunking, copied into aligned arrays", async () => {
  const payload = Float32Array.from({ length: 2048 }, (_, i) => Math.fround(Math.sin(i) * 1e3));
  const bytes = new Uint8Array([
    ...encodeStageFrame({ type: "hidden", seq: 3 }, payload),
    ...encodeStageFrame({ type: "close", sessions: ["é"] }),
  ]);
  for (const size of [1, 7, 4096, bytes.length]) {
    const frames: StageFrame[] = [];
    for await (const f of readStageFrames(chunked(bytes, size), () => 16_000)) frames.push(f);
    assert.deepEqual(frames.map((f) => f.header), [{ type: "hidden", seq: 3 }, {
      type: "close",
      sessions: ["é"],
    }]);
    assert.deepEqual(frames[0].payload, payload);
    assert.equal(frames[1].payload.length, 0);
  }
  const cut = () => chunked(bytes.subarray(0, 100), 100);
  await assert.rejects(async () => {
    for await (const _ of readStageFrames(cut(), () => 16_000));
  }, /ended inside frame 0/);
  await assert.rejects(async () => {
    for await (const _ of readStageFrames(cut(), () => 1000));
  }, /frame 0 is \d+ bytes, over the 1000-byte limit/);
});

// --- A real model: stories260K split in two over links, against the whole model in process. ---

Deno.test("stories260K in two stages over links samples exactly what the whole model held in process samples", async () => {
  const load = (layerStart: number, layerEnd: number) =>
    loadStageBatch({ path: STORIES, layerStart, layerEnd, ctxSize: 64, maxSlots: 2 });
  const [s0, s1, whole] = await Promise.all([load(0, 3), load(3, 5), load(0, 5)]);
  try {
    await withMesh(async (mesh) => {
      const [b, c] = [await stageNode(mesh, s0), await stageNode(mesh, s1)];
      const a = await mesh.node();
      const link0 = await openStageLink(a, target(b), openFor([], [0, 3]));
      const link1 = await openStageLink(a, target(c), openFor([], [3, 5]));
      const one = localStageCall({ batch: whole, release() {} }, a.peerId);
      const prompts = new Map([["g", [1, 403, 407]], ["c", [1, 365]]]);
      const open = (s: string) => ({ sampler: s === "g" ? GREEDY : CREATIVE });
      let rows = [...prompts].map(([s, t]) => row(s, t, { sample: true, open: open(s) }));
      for (let i = 0; i < 12; i++) {
        const mid = await link0.step(rows);
        assert.ok("hidden" in mid);
        const split = await link1.step(rows, mid.hidden);
        assert.deepEqual(split, await one.step(rows), `step ${i}`);
        assert.ok("picks" in split);
        rows = split.picks.map((p) => row(p!.session, [p!.id], { sample: true }));
      }
      one.destroy();
    });
  } finally {
    [s0, s1, whole].forEach((s) => s.close());
  }
});
