// The connection loop against a stand-in relay (a WebSocket server speaking just enough NIP-01
// and NIP-42) with the backoff on a fake clock: when it reconnects, and what it tells the state.
import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import { identityOf } from "./node-identity.ts";
import { createRelayConnection } from "./relay-connection.ts";
import type { RelayState } from "./relay-state.ts";
import { fakeClock } from "../tests/support/fake-clock.ts";
import { eventually } from "../tests/support/poll.ts";

const identity = identityOf(generateSecretKey());
const RELAY_PK = "ab".repeat(32);

/** Answers AUTH with OK and each REQ with `answer` (EOSE unless told otherwise). */
function standInRelay() {
  const sockets: WebSocket[] = [];
  const subs: string[] = [];
  const seen = { auths: 0 };
  let answer = (subId: string): unknown[] => ["EOSE", subId];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => {
      sockets.push(socket);
      socket.send(JSON.stringify(["AUTH", `challenge-${sockets.length}`]));
    };
    socket.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg[0] === "AUTH") {
        seen.auths++;
        socket.send(JSON.stringify(["OK", msg[1].id, true, ""]));
      } else if (msg[0] === "REQ") {
        subs.push(msg[1]);
        socket.send(JSON.stringify(answer(msg[1])));
      }
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}`,
    sockets,
    subs,
    seen,
    answerWith(fn: (subId: string) => unknown[]) {
      answer = fn;
    },
    stop: () => server.shutdown(),
  };
}

function recordingState() {
  const told = { accepted: 0, refused: [] as string[] };
  const state: Pick<RelayState, "receive" | "refused" | "accepted"> = {
    receive() {},
    refused: (reason) => void told.refused.push(reason),
    accepted: () => void told.accepted++,
  };
  return { told, state };
}

Deno.test("relay connection: after a drop it waits out the backoff, then authenticates and subscribes afresh", async () => {
  const relay = standInRelay();
  const clock = fakeClock();
  const { told, state } = recordingState();
  const conn = createRelayConnection(
    { url: relay.url, identity, relayPubkey: RELAY_PK, backoffMs: [300, 1000] },
    { state, clock },
  );
  try {
    await conn.start();
    assert.equal(conn.connected(), true);
    assert.deepEqual([relay.sockets.length, relay.seen.auths, told.accepted], [1, 1, 1]);

    for (const n of [2, 3]) {
      relay.sockets.at(-1)!.close();
      // The loop sleeps on the clock: its backoff is the one timer left.
      await eventually(() => !conn.connected() && clock.pending() === 1, {
        what: "the loop did not notice the drop",
      });
      await clock.advance(299);
      assert.equal(relay.sockets.length, n - 1, "no reconnect before the backoff");
      await clock.advance(1);
      await eventually(() => told.accepted === n && conn.connected(), {
        what: () => `no new subscription after the backoff (${told.accepted} EOSEs)`,
      });
      // After a good connection the backoff starts over: 300 ms again, not 1000.
      assert.deepEqual([relay.sockets.length, relay.seen.auths], [n, n]);
    }
  } finally {
    await conn.stop();
    await relay.stop();
  }
});

Deno.test("relay connection: a subscription closed restricted: is a refusal; another reason reconnects", async () => {
  const relay = standInRelay();
  const clock = fakeClock();
  relay.answerWith((subId) => ["CLOSED", subId, "restricted: not a member"]);
  const refused = recordingState();
  const denied = createRelayConnection(
    { url: relay.url, identity, relayPubkey: RELAY_PK, backoffMs: [100] },
    { state: refused.state, clock },
  );
  const dropped = recordingState();
  const member = createRelayConnection(
    { url: relay.url, identity, relayPubkey: RELAY_PK, backoffMs: [100] },
    { state: dropped.state, clock },
  );
  try {
    await denied.start();
    assert.deepEqual(refused.told.refused, ["restricted: not a member"]);
    assert.equal(denied.connected(), true, "a refused node stays connected");
    assert.equal(clock.pending(), 0, "and plans no reconnect");

    relay.answerWith((subId) => ["EOSE", subId]);
    await member.start();
    assert.equal(dropped.told.accepted, 1);
    relay.sockets[1].send(JSON.stringify(["CLOSED", relay.subs[1], "error: shutting down"]));
    await eventually(() => clock.pending() === 1, { what: "no reconnect planned" });
    await clock.advance(100);
    await eventually(() => dropped.told.accepted === 2, { what: "no new subscription" });
    assert.equal(relay.sockets.length, 3);
    assert.deepEqual(dropped.told.refused, []);
  } finally {
    await denied.stop();
    await member.stop();
    await relay.stop();
  }
});

Deno.test("relay connection: a first connection that fails throws from start; publish after stop throws", async () => {
  const relay = standInRelay();
  const url = relay.url;
  await relay.stop();
  const { state } = recordingState();
  const conn = createRelayConnection({ url, identity, relayPubkey: RELAY_PK }, { state });
  await assert.rejects(conn.start(), /cannot connect to the relay at ws:\/\/127\.0\.0\.1/);
  await conn.stop();
  await assert.rejects(conn.publish({} as never), /the relay client is closed/);
});
