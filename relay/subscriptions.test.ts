import assert from "node:assert/strict";
import type { NostrEvent } from "../protocol/mod.ts";
import type { Filter } from "./filter.ts";
import { createSubscriptionHub, type Subscriber } from "./subscriptions.ts";

const hex = (n: number) => n.toString(16).padStart(64, "0");

function event(over: Partial<NostrEvent> = {}): NostrEvent {
  return {
    id: hex(1),
    pubkey: hex(2),
    kind: 1,
    created_at: 1000,
    tags: [],
    content: "",
    sig: "00".repeat(64),
    ...over,
  };
}

function subscriber(mayRead = true) {
  const got: [string, string][] = [];
  const who: Subscriber = {
    mayRead: () => mayRead,
    deliver: (subId, ev) => got.push([subId, ev.id]),
  };
  return { who, got };
}

Deno.test("subscriptions: a broadcast tests only the filters its event's keys find", () => {
  const hub = createSubscriptionHub();
  const crowd = subscriber();
  // 1,000 subscriptions that cannot match: other authors, other ids, other tag values.
  for (let i = 0; i < 1000; i++) {
    const filter: Filter = i % 3 === 0
      ? { authors: [hex(10_000 + i)] }
      : i % 3 === 1
      ? { ids: [hex(20_000 + i)] }
      : { "#p": [hex(30_000 + i)] };
    hub.set(crowd.who, `n${i}`, [filter]);
  }
  const reader = subscriber();
  hub.set(reader.who, "mine", [{ authors: [hex(2)], kinds: [1] }]);
  hub.set(reader.who, "tagged", [{ "#p": [hex(7)] }]);
  hub.set(reader.who, "kind7", [{ kinds: [7] }]);
  const tested = hub.broadcast(event({ tags: [["p", hex(7)]] }));
  assert.equal(tested, 2, "the author's and the tag's filters only");
  assert.deepEqual(reader.got, [["mine", hex(1)], ["tagged", hex(1)]]);
  assert.deepEqual(crowd.got, []);
  assert.equal(hub.size(), 1003);
});

Deno.test("subscriptions: unindexed filters are tested on every event; empty lists on none", () => {
  const hub = createSubscriptionHub();
  const s = subscriber();
  hub.set(s.who, "all", [{}]);
  hub.set(s.who, "since", [{ since: 2000 }]);
  hub.set(s.who, "never", [{ ids: [] }, { kinds: [1], authors: [] }]);
  assert.equal(hub.broadcast(event()), 2);
  assert.deepEqual(s.got, [["all", hex(1)]]);
});

Deno.test("subscriptions: each subscription gets an event once, read rights asked once", () => {
  const hub = createSubscriptionHub();
  let asked = 0;
  const got: string[] = [];
  const who: Subscriber = {
    mayRead: () => (asked++, true),
    deliver: (subId) => got.push(subId),
  };
  hub.set(who, "twice", [{ kinds: [1] }, { authors: [hex(2)] }]);
  hub.set(who, "also", [{ ids: [hex(1)] }]);
  hub.broadcast(event());
  assert.deepEqual(got.sort(), ["also", "twice"]);
  assert.equal(asked, 1);
  const denied = subscriber(false);
  hub.set(denied.who, "x", [{ kinds: [1] }]);
  hub.broadcast(event({ id: hex(3) }));
  assert.deepEqual(denied.got, []);
});

Deno.test("subscriptions: replacing and removing unfile the old filters", () => {
  const hub = createSubscriptionHub();
  const s = subscriber();
  hub.set(s.who, "a", [{ authors: [hex(2)] }]);
  hub.set(s.who, "a", [{ authors: [hex(5)] }]);
  assert.equal(hub.broadcast(event()), 0, "the replaced filter is gone from the index");
  assert.equal(hub.size(), 1);
  hub.set(s.who, "b", [{ kinds: [1] }]);
  assert.equal(hub.remove(s.who, "b"), true);
  assert.equal(hub.broadcast(event()), 0);
  hub.removeAll(s.who);
  assert.equal(hub.broadcast(event({ pubkey: hex(5) })), 0);
  assert.equal(hub.size(), 0);
  assert.deepEqual(s.got, []);
});
