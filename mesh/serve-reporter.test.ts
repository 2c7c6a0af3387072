import assert from "node:assert/strict";
import { generateSecretKey, verifyEvent } from "nostr-tools/pure";
import { type NostrEvent, type ServeReport, toEventShape } from "../protocol/mod.ts";
import { identityOf } from "./node-identity.ts";
import { serveReportEvent, startServeReporter } from "./serve-reporter.ts";
import { fakeClock } from "../tests/support/fake-clock.ts";

const node = identityOf(generateSecretKey());

function reportOf(peerId: string, over: Partial<ServeReport> = {}): ServeReport {
  return {
    modelId: "stories260K",
    modelName: "Stories 260K",
    peerId,
    nodeName: "test node",
    addrs: ["/ip4/127.0.0.1/tcp/4001"],
    stages: null,
    capacity: { memoryBytes: 1_000_000 },
    load: { active: 0, queued: 0 },
    state: "running",
    ...over,
  };
}

Deno.test("serve report: signed kind 24620 by the node; foreign peer ids and paths refused", () => {
  const ev = serveReportEvent(node, reportOf(node.peerId, { modelId: "hf://org/repo/m.gguf" }));
  assert.equal(ev.kind, 24620);
  assert.equal(ev.pubkey, node.pubkey);
  assert.ok(verifyEvent(toEventShape(ev)));
  assert.equal(JSON.parse(ev.content).modelId, "hf://org/repo/m.gguf");

  const other = identityOf(generateSecretKey());
  assert.throws(() => serveReportEvent(node, reportOf(other.peerId)), /is not this node's/);
  for (const modelId of ["/home/me/models/x.gguf", "./x.gguf", "~/x.gguf", "C:\\m\\x.gguf"]) {
    assert.throws(
      () => serveReportEvent(node, reportOf(node.peerId, { modelId })),
      /local path/,
      modelId,
    );
  }
  assert.throws(
    () => serveReportEvent(node, reportOf(node.peerId, { modelId: "models/tmp/x.gguf" })),
    /no catalog id/,
  );
});

Deno.test("serve reporter: at start, debounced on change, on the interval, 'stopping' last", async () => {
  const clock = fakeClock();
  const sent: { at: number; report: ServeReport; ev: NostrEvent }[] = [];
  const t0 = clock.now();
  let load = 0;
  const reporter = startServeReporter({
    relay: {
      publish: (ev) => {
        sent.push({ at: clock.now() - t0, report: JSON.parse(ev.content), ev });
        return Promise.resolve();
      },
    },
    identity: node,
    report: () => reportOf(node.peerId, { load: { active: load, queued: 0 } }),
    intervalMs: 300,
    debounceMs: 50,
    minChangeGapMs: 0,
    clock,
  });
  await clock.settle();
  assert.equal(sent.length, 1, "one report at start");
  load = 3;
  reporter.changed();
  reporter.changed();
  reporter.changed();
  await clock.advance(49);
  assert.equal(sent.length, 1, "nothing inside the debounce (50 ms)");
  await clock.advance(1);
  // Reports for the other changes would follow within a debounce; the interval's comes at 300 ms.
  await clock.advance(50);
  assert.equal(sent.length, 2, "three changes within the debounce make one report");
  assert.equal(sent[1].report.load.active, 3);
  assert.ok(sent[1].at >= 45, `sent after ${sent[1].at} ms, before the debounce`);
  assert.equal(sent[1].at, 50);
  await clock.advance(199);
  assert.equal(sent.length, 2, "nothing before the interval");
  await clock.advance(1);
  assert.equal(sent.length, 3, "the interval sends again");
  assert.ok(sent[2].at >= 290, `the interval report came after ${sent[2].at} ms`);
  assert.equal(sent[2].at, 300);
  await reporter.stop();
  assert.equal(sent.at(-1)!.report.state, "stopping");
  const count = sent.length;
  reporter.changed();
  // More than an interval (300 ms) in which nothing may be sent.
  await clock.advance(400);
  assert.equal(sent.length, count, "nothing after stop");
  assert.equal(clock.pending(), 0, "no timer left after stop");
});

Deno.test("serve reporter: reports for changes come at most once per minChangeGapMs", async () => {
  const clock = fakeClock();
  const sent: number[] = [];
  const t0 = clock.now();
  const reporter = startServeReporter({
    relay: { publish: () => (sent.push(clock.now() - t0), Promise.resolve()) },
    identity: node,
    report: () => reportOf(node.peerId),
    intervalMs: 10_000,
    debounceMs: 10,
    minChangeGapMs: 300,
    clock,
  });
  // The change comes 20 ms after the start report.
  await clock.advance(20);
  reporter.changed();
  // Within 150 ms of a change, still inside the 300 ms gap, nothing goes out.
  await clock.advance(150);
  assert.equal(sent.length, 1, "a change 20 ms after the start report went out at once");
  await clock.advance(129);
  assert.equal(sent.length, 1, "nothing before the gap has passed");
  await clock.advance(1);
  assert.equal(sent.length, 2, "no report for the change");
  assert.ok(sent[1] >= 290, `the change report came after ${sent[1]} ms`);
  assert.equal(sent[1], 300);
  await reporter.stop();
});

Deno.test("serve reporter: a refused publish is logged once and does not stop the reports", async () => {
  const clock = fakeClock();
  const warnings: string[] = [];
  let calls = 0;
  const reporter = startServeReporter({
    relay: {
      publish: () => {
        calls++;
        return Promise.reject(new Error("restricted: not a member"));
      },
    },
    identity: node,
    report: () => reportOf(node.peerId),
    intervalMs: 40,
    log: { info() {}, error() {}, warn: (m) => void warnings.push(m) },
    clock,
  });
  await clock.advance(80);
  assert.equal(calls, 3, "at start and on two intervals");
  await reporter.stop();
  assert.ok(calls >= 3, `only ${calls} attempts`);
  assert.deepEqual(warnings, ["could not send the serve report: restricted: not a member"]);
});

Deno.test("serve reporter: with the relay gone, stop waits for the last report 500 ms at most", async () => {
  const clock = fakeClock();
  const reporter = startServeReporter({
    relay: { publish: () => new Promise<void>(() => {}) },
    identity: node,
    report: () => reportOf(node.peerId),
    clock,
  });
  let stopped = false;
  const stopping = reporter.stop().then(() => void (stopped = true));
  await clock.advance(499);
  assert.equal(stopped, false, "stop returned before the last report had its 500 ms");
  await clock.advance(1);
  await stopping;
  assert.equal(clock.pending(), 0, "no timer left after stop");
});
