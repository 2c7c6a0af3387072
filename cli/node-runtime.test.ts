import assert from "node:assert/strict";
import {
  type InferenceService,
  type InferEvent,
  type InferRequest,
  ServiceError,
} from "../mesh/mod.ts";
import {
  createNodeRuntime,
  OFF_MESSAGE,
  type PreparedRuntime,
  type Progress,
  RuntimeConflict,
  type RuntimeParts,
  type RuntimeRequest,
  STOPPING_MESSAGE,
} from "./node-runtime.ts";
import type { Gate } from "./runtime-gate.ts";

/** A promise the test settles by hand: how each fake part waits for the test's go. */
function latch<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => (resolve = res, reject = rej));
  return { promise, resolve, reject };
}

/** A service whose streams hand out a token each time the test calls `step()`. */
function steppedService(name: string) {
  const waiting: (() => void)[] = [];
  const service: InferenceService = {
    models: () => Promise.resolve([{ id: name, name }]),
    async *infer(_req, signal) {
      for (let i = 0; i < 3; i++) {
        const go = latch();
        waiting.push(go.resolve);
        const aborted = new Promise<void>((r) => signal.addEventListener("abort", () => r()));
        await Promise.race([go.promise, aborted]);
        if (signal.aborted) return; // cancelled: ends without done, as real services do
        yield { type: "token", text: `${name}${i}`, id: i };
      }
      yield {
        type: "done",
        finish_reason: "stop",
        usage: { prompt_tokens: 1, completion_tokens: 3 },
        timings: {
          queued_ms: 0,
          prompt_n: 1,
          prompt_ms: 1,
          prompt_per_second: 1,
          predicted_n: 3,
          predicted_ms: 1,
          predicted_per_second: 1,
        },
      };
    },
  };
  return { service, step: () => waiting.splice(0).forEach((go) => go()), waiting };
}

interface FakeLog {
  events: string[];
  gates: Gate[];
  services: Map<string, ReturnType<typeof steppedService>>;
}

/**
 * Parts whose prepare and join wait for the test when `hold` names the request's model, and
 * fail when the model is "missing"; every step is written to `events`.
 */
function fakeParts(hold: Set<string> = new Set()) {
  const log: FakeLog = { events: [], gates: [], services: new Map() };
  const held = new Map<string, ReturnType<typeof latch<void>>>();
  const parts: RuntimeParts = {
    async prepare(req: RuntimeRequest, ctx: { gate: Gate; progress(p: Progress): void }) {
      const name = req.modelId ?? "client";
      log.events.push(`prepare ${name}`);
      log.gates.push(ctx.gate);
      ctx.progress({ phase: "loading" });
      if (hold.has(name)) {
        const l = latch();
        held.set(name, l);
        await l.promise;
      }
      if (name === "missing") throw new Error(`model "missing" is not in the catalog`);
      const stepped = steppedService(name);
      log.services.set(name, stepped);
      const prepared: PreparedRuntime = {
        modelId: req.modelId ?? null,
        modelName: req.modelId ? `${name} model` : null,
        join: () => {
          log.events.push(`join ${name}`);
          return Promise.resolve({
            service: stepped.service,
            status: () => ({ mode: req.mode }),
            availability: () => ({ available: true }),
            stop: () => {
              log.events.push(`stop ${name}`);
              return Promise.resolve();
            },
          });
        },
        discard: () => void log.events.push(`discard ${name}`),
      };
      return prepared;
    },
  };
  return { parts, log, release: (name: string) => held.get(name)?.resolve() };
}

const REQ: InferRequest = { model: "m", prompt: "hi", params: {} };

async function collect(stream: AsyncIterable<InferEvent>): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${err}`);
  assert.equal(err.code, "unavailable");
  return err.message;
}

Deno.test("runtime: off → starting → running → stopping → off, refusing /v1 in words outside running", async () => {
  const { parts, log, release } = fakeParts(new Set(["stories"]));
  const rt = createNodeRuntime(parts, { mode: "client" });
  assert.equal(rt.view().state, "off");
  assert.equal(await refusal(rt.service.models()), OFF_MESSAGE);

  const t = rt.start({ mode: "serve", modelId: "stories" });
  assert.equal(t.state, "starting");
  assert.equal(rt.view().state, "starting");
  assert.deepEqual(rt.view().progress, { phase: "loading" });
  assert.match(await refusal(rt.service.models()), /this node is starting/);
  assert.throws(() => rt.start({ mode: "client" }), RuntimeConflict);
  assert.throws(() => rt.stop(), /the node is starting \(serve stories\)/);

  release("stories");
  await t.done;
  assert.deepEqual(
    { state: rt.view().state, modelId: rt.view().modelId, progress: rt.view().progress },
    { state: "running", modelId: "stories", progress: null },
  );
  assert.deepEqual((await rt.service.models()).map((m) => m.id), ["stories"]);

  const s = rt.stop();
  assert.equal(s.state, "stopping");
  await s.done;
  assert.equal(rt.view().state, "off");
  assert.equal(await refusal(rt.service.models()), OFF_MESSAGE);
  assert.deepEqual(log.events, ["prepare stories", "join stories", "stop stories"]);
  assert.deepEqual(rt.stop().state, "off", "stopping an off node is nothing to do");
});

Deno.test("runtime: a switch prepares the new model before the old role stops, then joins", async () => {
  const { parts, log, release } = fakeParts(new Set(["big"]));
  const rt = createNodeRuntime(parts, { mode: "client", drainMs: 5_000 });
  await rt.start({ mode: "client" }).done;
  assert.equal(rt.start({ mode: "client" }).state, "running", "the same start is nothing to do");

  const t = rt.start({ mode: "serve", modelId: "big" });
  // Loading: the client role still answers, so the gap without a runtime is only the join.
  assert.deepEqual((await rt.service.models()).map((m) => m.id), ["client"]);
  assert.deepEqual(log.events, ["prepare client", "join client", "prepare big"]);
  release("big");
  await t.done;
  assert.deepEqual(log.events, [
    "prepare client",
    "join client",
    "prepare big",
    "stop client",
    "join big",
  ]);
  assert.equal(rt.view().mode, "serve");
  await rt.close();
});

Deno.test("runtime: a failed start is `failed` with the reason, and a later start works", async () => {
  const { parts, log } = fakeParts();
  const rt = createNodeRuntime(parts, { mode: "client" });
  await rt.start({ mode: "client" }).done;
  const t = rt.start({ mode: "serve", modelId: "missing" });
  await assert.rejects(t.done, /model "missing"/);
  const v = rt.view();
  assert.equal(v.state, "failed");
  assert.match(v.reason!, /model "missing" is not in the catalog/);
  // Failed means nothing runs: the client role it was switching from is stopped too.
  assert.deepEqual(log.events.slice(-2), ["prepare missing", "stop client"]);
  assert.match(await refusal(rt.service.models()), /its last start failed: model "missing"/);

  await rt.start({ mode: "serve", modelId: "good" }).done;
  assert.equal(rt.view().state, "running");
  assert.equal(rt.view().reason, null);
  await rt.close();
});

Deno.test("runtime: a join that fails discards what was prepared", async () => {
  const { parts, log } = fakeParts();
  const failing: RuntimeParts = {
    async prepare(req, ctx) {
      const p = await parts.prepare(req, ctx);
      return { ...p, join: () => Promise.reject(new Error("the relay refused")) };
    },
  };
  const rt = createNodeRuntime(failing, { mode: "serve" });
  await assert.rejects(rt.start({ mode: "serve", modelId: "m" }).done, /the relay refused/);
  assert.equal(rt.view().state, "failed");
  assert.deepEqual(log.events, ["prepare m", "discard m"]);
});

Deno.test("runtime: a stop drains: a stream inside finishes, new requests get 'stopping'", async () => {
  const { parts, log } = fakeParts();
  const rt = createNodeRuntime(parts, { mode: "serve", drainMs: 10_000 });
  await rt.start({ mode: "serve", modelId: "m" }).done;
  const stepped = log.services.get("m")!;
  const stream = collect(rt.service.infer(REQ, new AbortController().signal));
  while (stepped.waiting.length === 0) await new Promise((r) => setTimeout(r, 1));

  const s = rt.stop();
  assert.equal(rt.view().state, "stopping");
  assert.equal(await refusal(rt.service.models()), STOPPING_MESSAGE);
  const late = await collect(rt.service.infer(REQ, new AbortController().signal)).then(
    () => "answered",
    (e) => e.message,
  );
  assert.equal(late, STOPPING_MESSAGE);
  assert.ok(!log.events.includes("stop m"), "the role waits for the stream inside");

  for (let i = 0; i < 3; i++) {
    while (stepped.waiting.length === 0) await new Promise((r) => setTimeout(r, 1));
    stepped.step();
  }
  const events = await stream;
  assert.deepEqual(events.map((e) => e.type), ["token", "token", "token", "done"]);
  await s.done;
  assert.equal(rt.view().state, "off");
  assert.equal(log.events.at(-1), "stop m");
});

Deno.test("runtime: past the drain, a stream still running ends with 'the node stopped: …'", async () => {
  const { parts, log } = fakeParts();
  const rt = createNodeRuntime(parts, { mode: "serve", drainMs: 50 });
  await rt.start({ mode: "serve", modelId: "m" }).done;
  const stepped = log.services.get("m")!;
  const it = rt.service.infer(REQ, new AbortController().signal)[Symbol.asyncIterator]();
  const first = it.next();
  while (stepped.waiting.length === 0) await new Promise((r) => setTimeout(r, 1));
  stepped.step();
  assert.equal(((await first).value as InferEvent).type, "token");

  await rt.stop().done; // 50 ms, then the stream is ended and the role stopped
  assert.equal(rt.view().state, "off");
  const rest: InferEvent[] = [];
  for (let step = await it.next(); !step.done; step = await it.next()) rest.push(step.value);
  assert.equal(rest.length, 1);
  const end = rest[0];
  assert.equal(end.type, "error");
  assert.equal(end.type === "error" && end.code, "unavailable");
  assert.match(
    end.type === "error" ? end.message : "",
    /^the node stopped: this request was still running 0\.05 s after the stop began$/,
  );
});

Deno.test("runtime: a serving runtime's gate holds peers' requests to the same drain", async () => {
  const { parts, log } = fakeParts();
  const rt = createNodeRuntime(parts, { mode: "serve", drainMs: 50 });
  await rt.start({ mode: "serve", modelId: "m" }).done;
  // What runtime-roles.ts hands the mesh for peers: the service behind the runtime's gate.
  const offered = log.gates[0].wrap(log.services.get("m")!.service);
  const peer = collect(offered.infer(REQ, new AbortController().signal));
  while (log.gates[0].inFlight() === 0) await new Promise((r) => setTimeout(r, 1));
  await rt.stop().done;
  const events = await peer;
  assert.equal(events.at(-1)?.type, "error");
  await assert.rejects(
    collect(offered.infer(REQ, new AbortController().signal)),
    new RegExp(STOPPING_MESSAGE),
  );
});
