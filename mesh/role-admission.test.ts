// The admission part alone: the relay's answers come from stubbed keepTicket/requestTicket, time
// from a fake clock, so the retry schedule and the revocation check are read to the millisecond.
import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import type { Logger, NostrEvent } from "../protocol/mod.ts";
import { identityOf } from "./node-identity.ts";
import { type AdmissionComponents, createAdmission } from "./role-admission.ts";
import { MESH_DENIED_MESSAGE, ServiceError } from "./service.ts";
import type { TicketKeeper } from "./ticket-keeper.ts";
import { fakeClock } from "../tests/support/fake-clock.ts";

const ask = {
  admissionUrl: "http://127.0.0.1:1/admission",
  identity: identityOf(generateSecretKey()),
  relayPubkey: "ab".repeat(32),
  meshId: "m1",
};
const TICKET = { id: "t1", kind: 24625 } as NostrEvent;

function denied(code = "not_member", message = "not a member"): ServiceError {
  const err = new ServiceError("mesh_denied", MESH_DENIED_MESSAGE);
  err.cause = { status: 403, code, message };
  return err;
}

/** A stand-in relay: each ask takes the next answer (the last repeats); keepers count stops. */
function relayAnswering(...answers: ("ticket" | Error)[]) {
  const asked: number[] = [];
  const keepers: { stopped: boolean }[] = [];
  const clock = fakeClock();
  const warnings: string[] = [];
  const log: Logger = { info() {}, error() {}, warn: (m) => void warnings.push(m) };
  const answer = () => {
    asked.push(clock.now());
    const a = answers[Math.min(asked.length - 1, answers.length - 1)];
    if (a !== "ticket") throw a;
  };
  const keepTicket = (): Promise<TicketKeeper> => {
    try {
      answer();
    } catch (err) {
      return Promise.reject(err);
    }
    const k = { stopped: false };
    keepers.push(k);
    return Promise.resolve({
      current: () => k.stopped ? undefined : TICKET,
      onChange: () => () => {},
      denied: () => undefined,
      stop: () => void (k.stopped = true),
    });
  };
  const requestTicket = (): Promise<NostrEvent> => {
    try {
      answer();
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(TICKET);
  };
  const components = (join: AdmissionComponents["join"] = () => Promise.resolve()) => ({
    join,
    keepTicket,
    requestTicket,
    clock,
  });
  return { asked, keepers, clock, warnings, log, components };
}

Deno.test("admission: an admitted node holds its ticket; a required node the relay denies fails to start", async () => {
  const ok = relayAnswering("ticket");
  const a = createAdmission({ ask, required: true, log: ok.log }, ok.components());
  assert.deepEqual(a.admitted(), { denied: false, reason: "waiting for a mesh ticket" });
  await a.start();
  assert.equal(a.admitted(), true);
  assert.equal(a.ticket(), TICKET);
  await a.stop();
  assert.equal(ok.keepers[0].stopped, true, "stop stops the ticket keeper");

  const no = relayAnswering(denied());
  const b = createAdmission({ ask, required: true, log: no.log }, no.components());
  await assert.rejects(b.start(), (err: Error) => {
    assert.ok(err instanceof ServiceError && err.code === "mesh_denied");
    assert.equal(err.message, `${MESH_DENIED_MESSAGE} (not_member: not a member)`);
    return true;
  });
  assert.equal(no.clock.pending(), 0, "a node that failed to start asks no more");

  // Anything but a 403 is no denial: the start fails with it, required or not.
  const gone = relayAnswering(new Error("cannot reach the mesh admission endpoint"));
  const c = createAdmission({ ask, required: false, log: gone.log }, gone.components());
  await assert.rejects(c.start(), /cannot reach/);
});

Deno.test("admission: a denied client asks again after each wait, the last repeating, then joins", async () => {
  const r = relayAnswering(denied(), denied(), denied(), denied(), "ticket");
  let joins = 0;
  const a = createAdmission(
    { ask, required: false, retryMs: [100, 200], log: r.log },
    r.components(() => (joins++, Promise.resolve())),
  );
  await a.start();
  assert.deepEqual(a.admitted(), { denied: true, reason: "not_member: not a member" });
  assert.equal(a.ticket(), undefined);
  await r.clock.advance(99);
  assert.deepEqual(r.asked, [0]);
  await r.clock.advance(601);
  assert.deepEqual(r.asked, [0, 100, 300, 500, 700], "after 100 ms, then every 200 ms");
  assert.equal(joins, 1, "joined once admitted");
  assert.equal(a.admitted(), true);
  assert.equal(a.ticket(), TICKET);
  assert.equal(r.clock.pending(), 0, "an admitted node asks no more");
  assert.match(r.warnings[0], /\(not_member: not a member\); asking the relay again in 100 ms$/);
  await a.stop();
});

Deno.test("admission: a join that fails drops the ticket and asks again on the schedule", async () => {
  const r = relayAnswering(denied(), "ticket");
  const joins: number[] = [];
  const a = createAdmission(
    { ask, required: false, retryMs: [100], log: r.log },
    r.components(() => {
      joins.push(r.clock.now());
      return joins.length === 1 ? Promise.reject(new Error("no relay")) : Promise.resolve();
    }),
  );
  await a.start();
  await r.clock.advance(100);
  assert.deepEqual(joins, [100]);
  assert.equal(r.keepers[0].stopped, true, "the failed join's ticket keeper is stopped");
  assert.equal(a.admitted() === true, false, "still denied while not joined");
  assert.ok(r.warnings.includes("joining the mesh after admission failed: no relay"));
  await r.clock.advance(100);
  assert.deepEqual(joins, [100, 200]);
  assert.equal(a.admitted(), true);
  await a.stop();
  assert.equal(r.keepers[1].stopped, true);
});

Deno.test("admission: stop ends the asking; an answer that comes after stop is dropped", async () => {
  const r = relayAnswering(denied(), "ticket");
  let joins = 0;
  const a = createAdmission(
    { ask, required: false, retryMs: [100], log: r.log },
    r.components(() => (joins++, Promise.resolve())),
  );
  await a.start();
  await a.stop();
  assert.equal(r.clock.pending(), 0, "no ask waits after stop");
  await r.clock.advance(1000);
  assert.deepEqual(r.asked, [0]);

  // An ask already under way when the part stops: its ticket keeper is stopped, nobody joins.
  let answer!: (k: TicketKeeper) => void;
  const late = { stopped: false };
  const b = createAdmission({ ask, required: false, retryMs: [100], log: r.log }, {
    ...r.components(() => (joins++, Promise.resolve())),
    keepTicket: () => {
      r.asked.push(r.clock.now());
      if (r.asked.length === 2) return Promise.reject(denied());
      return new Promise((resolve) => answer = resolve);
    },
  });
  await b.start();
  await r.clock.advance(100);
  await b.stop();
  answer({
    current: () => TICKET,
    onChange: () => () => {},
    denied: () => undefined,
    stop: () => void (late.stopped = true),
  });
  await r.clock.settle();
  assert.equal(late.stopped, true);
  assert.equal(joins, 0);
});

Deno.test("admission: a failed call asks the relay at most every 5 s; a 403 denies, a ticket admits again", async () => {
  const r = relayAnswering("ticket", "ticket", denied("not_member", "removed"), "ticket");
  const a = createAdmission({ ask, required: false, log: r.log }, r.components());
  await a.start();
  a.recheck();
  a.recheck();
  await r.clock.advance(4999);
  a.recheck();
  await r.clock.settle();
  assert.deepEqual(r.asked, [0, 0], "one recheck within 5 s");
  assert.equal(a.admitted(), true, "a ticket on recheck keeps the node admitted");

  await r.clock.advance(1);
  a.recheck();
  await r.clock.settle();
  assert.deepEqual(r.asked, [0, 0, 5000]);
  assert.deepEqual(a.admitted(), { denied: true, reason: "not_member: removed" });
  assert.ok(r.warnings.includes("the relay no longer admits this node: not_member: removed"));

  await r.clock.advance(5000);
  a.recheck();
  await r.clock.settle();
  assert.equal(a.admitted(), true, "a ticket on a later recheck admits the node again");
  await a.stop();
});

Deno.test("admission: a node denied at start does not recheck on failed calls", async () => {
  const r = relayAnswering(denied());
  const a = createAdmission(
    { ask, required: false, retryMs: [60_000], log: r.log },
    r.components(),
  );
  await a.start();
  a.recheck();
  await r.clock.settle();
  assert.deepEqual(r.asked, [0], "only the retry schedule asks a denied node");
  await a.stop();
});
