// Malformed and abusive input against the relay process. Each kind of abuse must get a clear
// answer (NOTICE, OK false or CLOSED with a NIP-01 prefix), and afterwards the same connection
// still gets a normal REQ answered, a new connection works, and the process is alive.
import assert from "node:assert/strict";
import { finalizeEvent } from "nostr-tools/pure";
import type { TestClient } from "./support/relay-test-client.ts";
import {
  connectAs,
  note,
  query,
  type RelayHarness,
  relayTest,
  sharedRelay,
} from "./relay-harness.ts";

const relay = sharedRelay({ members: 1, prefix: "grove-relay-abuse-" });

/** The connection (when still open), a new connection and the process all still work. */
async function assertHealthy(h: RelayHarness, client?: TestClient) {
  if (client) await query(client, { kinds: [1], limit: 1 });
  const fresh = await connectAs(h, h.members[0]);
  try {
    const ev = note(h.members[0], `still here ${crypto.randomUUID()}`);
    assert.deepEqual(await fresh.publish(ev), ["OK", ev.id, true, ""]);
    assert.deepEqual((await query(fresh, { ids: [ev.id] })).map((e) => e.id), [ev.id]);
  } finally {
    await fresh.close();
  }
  assert.ok(h.alive(), "the relay process died");
}

const isNotice = (m: unknown[]) => m[0] === "NOTICE";

async function expectNotice(client: TestClient, frame: string | unknown[], pattern: RegExp) {
  client.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  const m = await client.next(isNotice);
  assert.match(m[1] as string, pattern, `for ${String(frame).slice(0, 80)}`);
}

async function expectClosed(client: TestClient, req: unknown[], pattern: RegExp) {
  client.send(req);
  const m = await client.next((m) => m[1] === req[1]);
  assert.equal(m[0], "CLOSED", `${JSON.stringify(req).slice(0, 80)} got ${JSON.stringify(m)}`);
  assert.match(m[2] as string, pattern);
}

relayTest("abuse: frames that are not JSON arrays get NOTICE invalid:", async () => {
  const h = await relay.get();
  const client = await connectAs(h);
  try {
    for (const frame of ['["EVENT",', "not json", "{}", "[]", "[1,2]", "null", '"REQ"', "[{}]"]) {
      await expectNotice(client, frame, /^invalid: /);
    }
    await assertHealthy(h, client);
  } finally {
    await client.close();
  }
});

relayTest("abuse: wrong types in EVENT, REQ, CLOSE and AUTH are refused clearly", async () => {
  const h = await relay.get();
  const client = await connectAs(h);
  try {
    await expectNotice(client, ["EVENT", 5], /^invalid: /);
    await expectNotice(client, ["REQ", 5, {}], /^invalid: REQ needs a subscription id/);
    await expectNotice(client, ["CLOSE", { id: 1 }], /^invalid: CLOSE/);
    await expectNotice(client, ["AUTH", "not an event"], /\w/);
    client.send(["EVENT", { id: "abc", kind: "one" }]);
    const ok = await client.next((m) => m[0] === "OK" && m[1] === "abc");
    assert.equal(ok[2], false);
    assert.match(ok[3] as string, /^invalid: /);
    await expectClosed(client, ["REQ", "s1", "not a filter"], /^invalid: /);
    await expectClosed(client, ["REQ", "s2", { kinds: "1" }], /^invalid: /);
    await expectClosed(client, ["REQ", "s3", { authors: [42] }], /^invalid: /);
    await expectClosed(client, ["REQ", "s4", { since: "yesterday" }], /^invalid: /);
    await expectClosed(client, ["REQ", "s5"], /^invalid: .*filter/);
    await expectClosed(client, ["REQ", "x".repeat(65), {}], /^invalid: subscription ids/);
    await expectClosed(client, ["REQ", "s6", ...Array(17).fill({})], /^invalid: at most 16/);
    await assertHealthy(h, client);
  } finally {
    await client.close();
  }
});

relayTest("abuse: unknown verbs get NOTICE, COUNT gets CLOSED", async () => {
  const h = await relay.get();
  const client = await connectAs(h);
  try {
    await expectNotice(client, ["HELLO", 1], /^invalid: unknown message type "HELLO"/);
    await expectNotice(client, ["event", {}], /^invalid: unknown message type/);
    await expectNotice(client, ["X".repeat(5000)], /^invalid: unknown message type/);
    await expectClosed(client, ["COUNT", "c1", {}], /^invalid: COUNT/);
    await assertHealthy(h, client);
  } finally {
    await client.close();
  }
});

/** The NOTICE a raw binary frame gets (the test client only sends text). */
async function binaryFrameAnswer(url: string): Promise<string> {
  const ws = new WebSocket(url);
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no NOTICE for a binary frame")), 3000);
      ws.onopen = () => ws.send(new Uint8Array([0x5b, 0x5d]));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m[0] !== "NOTICE") return;
        clearTimeout(timer);
        resolve(m[1]);
      };
      ws.onerror = () => reject(new Error("binary frame: socket error"));
    });
  } finally {
    ws.close();
  }
}

/** Sends `frame` on a fresh member connection; resolves with the close code the relay gave. */
async function closeCodeFor(h: RelayHarness, frame: string): Promise<number> {
  const client = await connectAs(h, h.members[0]);
  client.send(frame);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    client.closed,
    new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), 5000)),
  ]);
  clearTimeout(timer);
  await client.close();
  assert.ok(closed, `the relay kept the socket open after a ${frame.length}-byte frame`);
  return closed.code;
}

relayTest(
  "abuse: frames over max_message_length are closed with 1009; binary frames get NOTICE",
  async () => {
    const h = await relay.get();
    const max = h.info.limitation.max_message_length;
    assert.ok(typeof max === "number" && max > 0, "NIP-11 advertises max_message_length");
    // The WebSocket server reads the frame header and refuses before buffering (RFC 6455 1009).
    const huge = note(h.members[0], "x".repeat(max + 1));
    assert.equal(await closeCodeFor(h, JSON.stringify(["EVENT", huge])), 1009);
    const ids = JSON.stringify(["REQ", "big", { ids: Array(8000).fill("f".repeat(64)) }]);
    assert.equal(await closeCodeFor(h, ids), 1009);
    const four = JSON.stringify(["EVENT", note(h.members[0], "y".repeat(4 << 20))]);
    assert.equal(await closeCodeFor(h, four), 1009);
    assert.match(await binaryFrameAnswer(h.url), /^invalid: binary frames/);
    const client = await connectAs(h, h.members[0]);
    try {
      // Content over max_content_length within the frame limit: OK false.
      const long = note(h.members[0], "z".repeat((h.info.limitation.max_content_length ?? 0) + 1));
      const ok = await client.publish(long);
      assert.equal(ok[2], false);
      assert.match(ok[3] as string, /^invalid: content longer/);
      await assertHealthy(h, client);
    } finally {
      await client.close();
    }
  },
);

relayTest("abuse: bad ids and bad signatures get OK false invalid:", async () => {
  const h = await relay.get();
  const client = await connectAs(h, h.members[0]);
  try {
    const ev = note(h.members[0], "original");
    const tampered = { ...ev, content: "tampered" };
    const r1 = await client.publish(tampered);
    assert.deepEqual(r1.slice(0, 3), ["OK", ev.id, false]);
    assert.match(r1[3] as string, /^invalid: event id/);
    const badSig = { ...ev, sig: ev.sig.slice(0, -2) + (ev.sig.endsWith("00") ? "01" : "00") };
    const r2 = await client.publish(badSig);
    assert.deepEqual(r2.slice(0, 3), ["OK", ev.id, false]);
    assert.match(r2[3] as string, /^invalid: bad signature/);
    const shortSig = { ...ev, sig: "ab" };
    const r3 = await client.publish(shortSig);
    assert.equal(r3[2], false);
    assert.match(r3[3] as string, /^invalid: /);
    // None of them was stored, and the honest event still is accepted.
    assert.deepEqual(await query(client, { ids: [ev.id] }), []);
    assert.deepEqual(await client.publish(ev), ["OK", ev.id, true, ""]);
    await assertHealthy(h, client);
  } finally {
    await client.close();
  }
});

relayTest(
  "abuse: a flood of events beyond the rate limit gets OK false rate-limited:",
  async () => {
    const h = await relay.get();
    const client = await connectAs(h, h.members[0]);
    try {
      const t = Math.floor(Date.now() / 1000);
      const events = Array.from(
        { length: 150 },
        (_, i) =>
          finalizeEvent(
            { kind: 1, created_at: t, tags: [], content: `flood ${i}` },
            h.members[0].sk,
          ),
      );
      const start = performance.now();
      for (const ev of events) client.send(["EVENT", ev]);
      const answers = [];
      for (const ev of events) {
        answers.push(
          await client.next((m) => m[0] === "OK" && m[1] === ev.id),
        );
      }
      const seconds = (performance.now() - start) / 1000;
      const accepted = answers.filter((m) => m[2] === true).length;
      const limited = answers.filter((m) => m[2] === false);
      assert.ok(limited.length > 0, "150 events at once were all accepted: no rate limit");
      assert.ok(
        limited.every((m) => /^rate-limited: /.test(m[3] as string)),
        JSON.stringify(limited[0]),
      );
      // The burst (a tenth of a minute's worth) plus what refilled while the flood lasted.
      assert.ok(
        accepted <= 60 + Math.ceil(seconds * 10) + 1,
        `${accepted} accepted in ${seconds} s`,
      );
      assert.ok(accepted >= 5, `only ${accepted} accepted`);
      await assertHealthy(h, client);
    } finally {
      await client.close();
    }
  },
);

relayTest("abuse: a flood of REQs gets CLOSED rate-limited:", async () => {
  const h = await relay.get();
  const client = await connectAs(h);
  try {
    for (let i = 0; i < 120; i++) {
      client.send(["REQ", `r${i}`, { kinds: [1], limit: 1 }, { ids: [] }]);
    }
    const answers = [];
    for (let i = 0; i < 120; i++) {
      answers.push(
        await client.next((m) => (m[0] === "EOSE" || m[0] === "CLOSED") && m[1] === `r${i}`),
      );
      client.send(["CLOSE", `r${i}`]);
    }
    const limited = answers.filter((m) => m[0] === "CLOSED");
    assert.ok(limited.length > 0, "120 REQs at once were all served: no rate limit");
    assert.ok(limited.every((m) => /^rate-limited: |^error: at most/.test(m[2] as string)));
    assert.ok(limited.some((m) => /^rate-limited: /.test(m[2] as string)));
  } finally {
    await client.close();
  }
  await assertHealthy(h);
});

relayTest(
  "abuse: subscriptions beyond max_subscriptions get CLOSED; CLOSE frees a slot",
  async () => {
    const h = await relay.get();
    const max = h.info.limitation.max_subscriptions;
    assert.ok(typeof max === "number" && max > 0 && max < 50, `max_subscriptions ${max}`);
    const client = await connectAs(h);
    try {
      for (let i = 0; i < max; i++) {
        client.send(["REQ", `s${i}`, { kinds: [1], limit: 1 }]);
        await client.next((m) => m[0] === "EOSE" && m[1] === `s${i}`);
      }
      await expectClosed(client, ["REQ", "one-too-many", { kinds: [1] }], /^error: at most/);
      // Replacing an open subscription is not a new one.
      client.send(["REQ", "s0", { kinds: [1], limit: 1 }]);
      await client.next((m) => m[0] === "EOSE" && m[1] === "s0");
      client.send(["CLOSE", "s1"]);
      await query(client, { kinds: [1], limit: 1 }, "fits-now");
    } finally {
      await client.close();
    }
    await assertHealthy(h);
  },
);

relayTest("abuse: writes without AUTH are refused auth-required:", async () => {
  const h = await relay.get();
  const client = await connectAs(h);
  try {
    const ev = note(h.members[0], "unauthenticated");
    const ok = await client.publish(ev);
    assert.equal(ok[2], false);
    assert.match(ok[3] as string, /^auth-required: /);
    await assertHealthy(h, client);
  } finally {
    await client.close();
  }
});

relayTest("abuse: the relay process survived everything, then stops cleanly", async () => {
  const h = await relay.get();
  assert.ok(h.alive());
  const out = await h.stop();
  assert.equal(out.code, 0, out.stderr.slice(-2000));
});
