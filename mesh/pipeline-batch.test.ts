import assert from "node:assert/strict";
import { createPipelineBatch, type PipelinePlan } from "./pipeline-batch.ts";
import { StageFailedError } from "./stage-link.ts";
import type { StageCall, StageStepRow } from "./stage-messages.ts";
import { ServiceError } from "./service.ts";

/**
 * A toy model split in stages that keeps real per-session state, so a replay that loses or
 * repeats a token changes the answer: each stage adds its own number to every value and
 * remembers how many positions each session holds; the last stage picks the sum of everything
 * its session has seen, mod 97, and its "RNG" counts picks.
 */
function toyStage(peerId: string, index: number, last: boolean, log: string[]) {
  const positions = new Map<string, number>();
  const sums = new Map<string, number>();
  const rng = new Map<string, number>();
  let failAt: number | undefined;
  let steps = 0;
  const call: StageCall & { failOnStep(n: number): void; positions: Map<string, number> } = {
    peerId,
    range: [index, index + 1],
    positions,
    failOnStep(n) {
      failAt = n;
    },
    step(rows: readonly StageStepRow[], hidden?: Float32Array) {
      steps++;
      if (failAt !== undefined && steps >= failAt) {
        return Promise.reject(new StageFailedError(peerId, "closed", "connection reset"));
      }
      const values = hidden ?? Float32Array.from(rows.flatMap((r) => r.tokens));
      const out = values.map((v) => v + index);
      let at = 0;
      const picks = rows.map((r) => {
        if (r.open) {
          log.push(`${peerId} open ${r.session} rng=${r.open.rngState?.[0] ?? "seed"}`);
          rng.set(r.session, r.open.rngState?.[0] ?? 0);
        }
        positions.set(r.session, (positions.get(r.session) ?? 0) + r.tokens.length);
        let sum = sums.get(r.session) ?? 0;
        for (let i = 0; i < r.tokens.length; i++) sum += out[at + i];
        at += r.tokens.length;
        sums.set(r.session, sum);
        if (!r.sample) return null;
        const n = (rng.get(r.session) ?? 0) + 1;
        rng.set(r.session, n);
        return { session: r.session, id: sum % 97, logprob: -n, rng: [n, 0, 0, 0] };
      });
      return Promise.resolve(last ? { picks } : { hidden: out });
    },
    close(sessions) {
      for (const s of sessions) positions.delete(s);
    },
    destroy() {
      log.push(`${peerId} destroyed`);
    },
  };
  return call;
}

function plan(id: string, ...stages: StageCall[]): PipelinePlan {
  return { id, stages };
}

Deno.test("a pipeline step walks the stages in order and returns the last stage's picks", async () => {
  const log: string[] = [];
  const a = toyStage("A", 0, false, log), b = toyStage("B", 1, false, log);
  const c = toyStage("C", 2, true, log);
  const pipe = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    plan: () => Promise.resolve(plan("p1", a, b, c)),
  });
  const s0 = pipe.acquire({ sampler: { seed: 1 } })!;
  const s1 = pipe.acquire({ sampler: { seed: 2 } })!;
  // A prompt chunk that does not end the prompt is not sampled.
  const first = await pipe.step([
    { slot: s0, tokens: [1, 2], sample: false },
    { slot: s1, tokens: [5], sample: true },
  ]);
  assert.equal(first[0], undefined);
  // Each value passed A (+0), B (+1), C (+2): 5 + 3 = 8.
  assert.deepEqual(first[1], { id: 8, logprob: -1 });
  const second = await pipe.step([{ slot: s0, tokens: [3], sample: true }]);
  // Session s0 saw 1, 2, 3, each +3.
  assert.equal(second[0]?.id, (1 + 2 + 3 + 9) % 97);
  assert.equal(pipe.position(s0), 3);
  assert.equal(pipe.position(s1), 1);
  // The sampler goes with each session's first row only.
  assert.equal(log.filter((l) => l.startsWith("C open")).length, 2);
  pipe.release(s0);
  assert.equal(c.positions.size, 1, "the released session is closed on the stages");
});

Deno.test("a failed stage is planned around and the running sessions are replayed", async () => {
  const log: string[] = [];
  const a = toyStage("A", 0, false, log), b = toyStage("B", 1, false, log);
  const c = toyStage("C", 2, true, log);
  const a2 = toyStage("A", 0, false, log), d = toyStage("D", 1, false, log);
  const c2 = toyStage("C", 2, true, log);
  const excluded: string[][] = [];
  const pipe = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    maxRows: 4,
    plan: (exclude) => {
      excluded.push([...exclude]);
      return Promise.resolve(exclude.has("B") ? plan("p2", a2, d, c2) : plan("p1", a, b, c));
    },
  });
  // What the same steps give without a failure.
  const ref = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    plan: () =>
      Promise.resolve(
        plan(
          "r",
          toyStage("A", 0, false, []),
          toyStage("B", 1, false, []),
          toyStage("C", 2, true, []),
        ),
      ),
  });
  const steps = [[10, 11, 12, 13, 14, 15], [7], [8], [9]];
  const run = async (p: typeof pipe, failBefore?: () => void) => {
    const slot = p.acquire({ sampler: {} })!;
    const picks: number[] = [];
    for (const [i, tokens] of steps.entries()) {
      if (i === 2) failBefore?.();
      // Prompts longer than maxRows go in chunks, as the scheduler sends them.
      for (let at = 0; at < tokens.length; at += 4) {
        const chunk = tokens.slice(at, at + 4);
        const out = await p.step([{ slot, tokens: chunk, sample: at + 4 >= tokens.length }]);
        if (out[0]) picks.push(out[0].id);
      }
    }
    return picks;
  };
  const expected = await run(ref);
  const got = await run(pipe, () => b.failOnStep(1));
  assert.deepEqual(got, expected, "the text goes on as if nothing failed");
  assert.deepEqual(excluded, [[], ["B"]]);
  // The new plan got every token fed so far, once: 6 prompt + 7 (the step before the failure).
  assert.equal([...d.positions.values()][0], 6 + 1 + 1 + 1);
  // Its last stage's sampler continues from the RNG state of the last pick (2 picks made).
  assert.ok(log.some((l) => l.startsWith("C open") && l.endsWith("rng=2")), log.join("\n"));
  assert.ok(log.includes("B destroyed"));
});

Deno.test("a step fails with unavailable when no plan can be made", async () => {
  const log: string[] = [];
  const pipe = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    plan: (exclude) => {
      if (exclude.size > 0) {
        return Promise.reject(new ServiceError("unavailable", "waiting: 3.0 MiB more needed"));
      }
      const b = toyStage("B", 1, true, log);
      b.failOnStep(1);
      return Promise.resolve(plan("p1", toyStage("A", 0, false, log), b));
    },
  });
  const slot = pipe.acquire({ sampler: {} })!;
  await assert.rejects(
    pipe.step([{ slot, tokens: [1], sample: true }]),
    (err: unknown) => err instanceof ServiceError && /MiB more needed/.test(err.message),
  );
});

Deno.test("the pipeline refuses misuse with errors that name it", async () => {
  const pipe = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    maxSlots: 1,
    plan: () => Promise.resolve(plan("p", toyStage("A", 0, true, []))),
  });
  const slot = pipe.acquire()!;
  assert.equal(pipe.acquire(), undefined, "one slot only");
  await assert.rejects(pipe.step([{ slot: 5, tokens: [1] }]), /slot 5 is not in use/);
  await assert.rejects(pipe.step([{ slot, tokens: [] }]), /has no tokens/);
  await pipe.step([{ slot, tokens: [1, 2] }]);
  assert.throws(() => pipe.rewind(slot, 1), /split model/);
});

Deno.test("a new plan is taken up only when no request runs on the old one", async () => {
  let wanted = "p1";
  const made: string[] = [];
  const pipe = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    plan: () => {
      made.push(wanted);
      return Promise.resolve(plan(wanted, toyStage("A", 0, true, [])));
    },
    stale: (id) => id !== wanted,
  });
  const first = pipe.acquire()!;
  await pipe.step([{ slot: first, tokens: [1] }]);
  wanted = "p2"; // a candidate joined
  const second = pipe.acquire()!; // the first still runs: stay on p1
  await pipe.step([{ slot: first, tokens: [2] }, { slot: second, tokens: [3] }]);
  assert.equal(pipe.planId(), "p1");
  pipe.release(first);
  pipe.release(second);
  const third = pipe.acquire()!; // nothing runs: move
  await pipe.step([{ slot: third, tokens: [4] }]);
  assert.equal(pipe.planId(), "p2");
  assert.deepEqual(made, ["p1", "p2"]);
});

Deno.test("a long prompt chunk goes through the stages in waves that overlap", async () => {
  const events: string[] = [];
  /** A stage that takes a few ms per call and logs when each call starts and ends. */
  const slow = (peerId: string, index: number, last: boolean): StageCall => {
    const inner = toyStage(peerId, index, last, []);
    let call = 0;
    return {
      ...inner,
      async step(rows, hidden) {
        const n = call++;
        events.push(`${peerId}${n} start`);
        await new Promise((r) => setTimeout(r, 5));
        const out = await inner.step(rows, hidden);
        events.push(`${peerId}${n} end`);
        return out;
      },
    };
  };
  const a = slow("A", 0, false), b = slow("B", 1, true);
  const pipe = createPipelineBatch({
    vocabSize: 97,
    ctxSize: 64,
    plan: () => Promise.resolve(plan("p", a, b)),
  });
  const slot = pipe.acquire()!;
  const prompt = Array.from({ length: 40 }, (_, i) => i + 1);
  const [pick] = await pipe.step([{ slot, tokens: prompt, sample: true }]);
  // 40 tokens in waves of 16: three waves through each stage, every token once.
  assert.equal(events.filter((e) => e.endsWith("start")).length, 6);
  assert.equal(pick?.id, prompt.reduce((sum, t) => sum + t + 1, 0) % 97);
  // B works on wave 0 while A works on wave 1.
  assert.ok(events.indexOf("B0 start") < events.indexOf("A1 end"), events.join(", "));
  assert.equal(pipe.position(slot), 40);
});
