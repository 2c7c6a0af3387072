// nostr-tools, used exactly as its users use it (Relay and SimplePool, auth through `onauth` and
// `automaticallyAuth`), against the relay process: publish, subscribe, EOSE, live delivery,
// replaceable and addressable replacement, and NIP-09 deletion.
import assert from "node:assert/strict";
import { type EventTemplate, finalizeEvent, type VerifiedEvent } from "nostr-tools/pure";
import { Relay } from "nostr-tools/relay";
import { SimplePool } from "nostr-tools/pool";
import type { Filter } from "nostr-tools/filter";
import { KIND, type NostrEvent, parseMeshStatus } from "../protocol/mod.ts";
import { type Key, newKey, relayTest, sharedRelay } from "./relay-harness.ts";
import { eventually } from "./support/poll.ts";

const relay = sharedRelay({ members: 2, prefix: "grove-nostr-tools-" });

const signer = (key: Key) => (t: EventTemplate): Promise<VerifiedEvent> =>
  Promise.resolve(finalizeEvent(t, key.sk));

const event = (key: Key, kind: number, content: string, tags: string[][] = [], dt = 0) =>
  finalizeEvent({ kind, created_at: Math.floor(Date.now() / 1000) + dt, tags, content }, key.sk);

/** A nostr-tools Relay that answers the relay's AUTH challenge itself (`onauth`). */
async function authedRelay(url: string, key: Key): Promise<Relay> {
  const r = new Relay(url);
  r.onauth = signer(key);
  await r.connect();
  // The challenge arrives just after the socket opens; auth() joins the one onauth started.
  await eventually(() => r.auth(signer(key)).then(() => true, (err: Error) => err), {
    until: (result) => result === true,
    timeoutMs: 3000,
    intervalMs: 20,
    what: "the relay never took the AUTH",
  });
  return r;
}

/** Events for `filter` up to EOSE, through a nostr-tools subscription. */
function fetchUntilEose(r: Relay, filter: Filter): Promise<NostrEvent[]> {
  return new Promise((resolve, reject) => {
    const got: NostrEvent[] = [];
    const timer = setTimeout(() => reject(new Error("no EOSE within 3 s")), 3000);
    let eosed = false;
    const sub = r.subscribe([filter], {
      onevent: (e) => got.push(e),
      oneose: () => {
        eosed = true;
        clearTimeout(timer);
        resolve(got);
        sub.close();
      },
      onclose: (reason) => {
        clearTimeout(timer);
        if (!eosed) reject(new Error(`subscription closed: ${reason}`));
      },
    });
  });
}

relayTest("nostr-tools Relay: publish, subscribe to EOSE, then live delivery", async () => {
  const h = await relay.get();
  const [alice, bob] = h.members;
  const a = await authedRelay(h.url, alice);
  const b = await authedRelay(h.url, bob);
  try {
    const first = event(alice, 1, "hello from nostr-tools");
    await a.publish(first);
    const live = new Promise<NostrEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no live event within 3 s")), 3000);
      let eosed = false;
      const sub = b.subscribe([{ kinds: [1], authors: [alice.pk] }], {
        oneose: () => {
          eosed = true;
          void a.publish(event(alice, 1, "after EOSE"));
        },
        onevent: (e) => {
          if (!eosed) return;
          clearTimeout(timer);
          sub.close();
          resolve(e);
        },
      });
    });
    assert.equal((await live).content, "after EOSE");
    const stored = await fetchUntilEose(b, { ids: [first.id] });
    assert.deepEqual(stored.map((e) => e.id), [first.id]);
  } finally {
    a.close();
    b.close();
  }
});

relayTest("nostr-tools Relay: replaceable and addressable events replace older ones", async () => {
  const h = await relay.get();
  const [alice] = h.members;
  const r = await authedRelay(h.url, alice);
  try {
    const oldProfile = event(alice, 0, '{"name":"old"}', [], -10);
    const newProfile = event(alice, 0, '{"name":"new"}');
    await r.publish(oldProfile);
    await r.publish(newProfile);
    const profiles = await fetchUntilEose(r, { kinds: [0], authors: [alice.pk] });
    assert.deepEqual(profiles.map((e) => e.id), [newProfile.id]);
    // An older one arriving late does not replace the newer.
    await r.publish(event(alice, 0, '{"name":"stale"}', [], -20)).catch(() => {});
    const still = await fetchUntilEose(r, { kinds: [0], authors: [alice.pk] });
    assert.deepEqual(still.map((e) => e.id), [newProfile.id]);

    const d = (v: string) => [["d", v]];
    const listA1 = event(alice, 30000, "a1", d("a"), -5);
    const listA2 = event(alice, 30000, "a2", d("a"));
    const listB = event(alice, 30000, "b", d("b"));
    for (const e of [listA1, listA2, listB]) await r.publish(e);
    const lists = await fetchUntilEose(r, { kinds: [30000], authors: [alice.pk] });
    assert.deepEqual(lists.map((e) => e.content).sort(), ["a2", "b"]);
  } finally {
    r.close();
  }
});

relayTest("nostr-tools Relay: a kind 5 deletion removes the author's event", async () => {
  const h = await relay.get();
  const [alice, bob] = h.members;
  const a = await authedRelay(h.url, alice);
  const b = await authedRelay(h.url, bob);
  try {
    const doomed = event(alice, 1, "to be deleted");
    await a.publish(doomed);
    // Someone else's deletion request does not count.
    await b.publish(event(bob, KIND.DELETION, "", [["e", doomed.id]])).catch(() => {});
    assert.equal((await fetchUntilEose(a, { ids: [doomed.id] })).length, 1);
    const deletion = event(alice, KIND.DELETION, "oops", [["e", doomed.id]]);
    await a.publish(deletion);
    assert.deepEqual(await fetchUntilEose(a, { ids: [doomed.id] }), []);
    const kept = await fetchUntilEose(a, { kinds: [KIND.DELETION], authors: [alice.pk] });
    assert.deepEqual(kept.map((e) => e.id), [deletion.id]);
    // And it cannot be published again.
    await assert.rejects(a.publish(doomed));
  } finally {
    a.close();
    b.close();
  }
});

relayTest(
  "nostr-tools SimplePool: automatic auth publishes and reads the mesh status",
  async () => {
    const h = await relay.get();
    const [alice] = h.members;
    const pool = new SimplePool();
    pool.automaticallyAuth = () => signer(alice);
    try {
      const ev = event(alice, 1, "from the pool");
      const results = await Promise.allSettled(
        pool.publish([h.url], ev, { onauth: signer(alice) }),
      );
      assert.deepEqual(results.map((r) => r.status), ["fulfilled"], JSON.stringify(results));
      const got = await pool.querySync([h.url], { ids: [ev.id] }, { maxWait: 3000 });
      assert.deepEqual(got.map((e) => e.id), [ev.id]);
      // The automatically authenticated connection reads the members-only kinds.
      const [status] = await pool.querySync([h.url], { kinds: [KIND.MESH_STATUS] }, {
        maxWait: 3000,
      });
      assert.ok(status, "the pool read no kind 30621");
      assert.equal(parseMeshStatus(status, { relayPubkey: h.pubkey }).meshId, h.info.mesh.id);
    } finally {
      pool.destroy();
    }
  },
);

relayTest(
  "nostr-tools SimplePool: `onauth` answers CLOSED auth-required and resubscribes",
  async () => {
    const h = await relay.get();
    const [, bob] = h.members;
    const pool = new SimplePool(); // no automatic auth: the first REQ is refused
    try {
      const got = await new Promise<NostrEvent[]>((resolve, reject) => {
        const seen: NostrEvent[] = [];
        const timer = setTimeout(() => reject(new Error("no EOSE within 3 s")), 3000);
        const sub = pool.subscribe([h.url], { kinds: [KIND.MEMBERSHIP_LIST] }, {
          onauth: signer(bob),
          onevent: (e) => seen.push(e),
          oneose: () => {
            clearTimeout(timer);
            resolve(seen);
            sub.close();
          },
          onclose: (reasons) => {
            clearTimeout(timer);
            reject(new Error(`closed: ${reasons}`)); // a no-op once EOSE resolved
          },
        });
      });
      assert.equal(got.length, 1, "one membership list");
      assert.equal(got[0].pubkey, h.pubkey);
      assert.ok(got[0].tags.some((t) => t[0] === "member" && t[1] === bob.pk));
    } finally {
      pool.destroy();
    }
  },
);

relayTest(
  "nostr-tools SimplePool: a stranger's publish is refused with a clear reason",
  async () => {
    const h = await relay.get();
    const stranger = newKey();
    const pool = new SimplePool();
    try {
      const [result] = await Promise.allSettled(
        pool.publish([h.url], event(stranger, 1, "let me in"), { onauth: signer(stranger) }),
      );
      assert.equal(result.status, "rejected");
      assert.match(String((result as PromiseRejectedResult).reason), /restricted:/);
    } finally {
      pool.destroy();
    }
  },
);

relayTest("nostr-tools: the relay process is still up, then stops cleanly", async () => {
  const h = await relay.get();
  assert.ok(h.alive());
  assert.equal((await h.stop()).code, 0);
});
