// Live subscriptions of every connection: after EOSE, each newly accepted event is offered to
// each open REQ whose filters match it and whose connection may read it.
//
// A broadcast costs what matches, not what is open: each filter is filed under one key it
// demands (an id, else an author, else a tag value, else a kind: the most selective it has),
// and an event looks up only the keys it carries. A filter that demands none of these (only
// since/until, or nothing) goes on the fallback list, tested on every event.
import type { NostrEvent } from "../protocol/mod.ts";
import { type Filter, matchFilter, tagFilters } from "./filter.ts";

/** One connection as the hub sees it. */
export interface Subscriber {
  /** Read rights are checked per event, so a member removed mid-subscription stops receiving. */
  mayRead(ev: NostrEvent): boolean;
  deliver(subId: string, ev: NostrEvent): void;
}

export interface SubscriptionHub {
  /** Opens or replaces subscription `subId` of `who`. */
  set(who: Subscriber, subId: string, filters: Filter[]): void;
  /** True when there was such a subscription. */
  remove(who: Subscriber, subId: string): boolean;
  removeAll(who: Subscriber): void;
  count(who: Subscriber): number;
  has(who: Subscriber, subId: string): boolean;
  /** Delivers ev; returns how many filters it had to test (the rest were never looked at). */
  broadcast(ev: NostrEvent): number;
  /** Open subscriptions across all connections. */
  size(): number;
}

interface Sub {
  who: Subscriber;
  subId: string;
  /** Each filter with the index keys it is filed under. */
  entries: Entry[];
}

interface Entry {
  sub: Sub;
  filter: Filter;
  /** Index keys; empty: the fallback list; undefined: matches nothing, filed nowhere. */
  keys: string[] | undefined;
}

export function createSubscriptionHub(): SubscriptionHub {
  const byConnection = new Map<Subscriber, Map<string, Sub>>();
  const index = new Map<string, Set<Entry>>();
  const fallback = new Set<Entry>();
  let total = 0;

  const file = (entry: Entry) => {
    if (entry.keys === undefined) return;
    if (entry.keys.length === 0) return void fallback.add(entry);
    for (const key of entry.keys) {
      let set = index.get(key);
      if (!set) index.set(key, set = new Set());
      set.add(entry);
    }
  };
  const unfile = (entry: Entry) => {
    if (entry.keys === undefined) return;
    if (entry.keys.length === 0) return void fallback.delete(entry);
    for (const key of entry.keys) {
      const set = index.get(key);
      set?.delete(entry);
      if (set?.size === 0) index.delete(key);
    }
  };
  const drop = (sub: Sub) => {
    for (const entry of sub.entries) unfile(entry);
    total--;
  };

  return {
    set(who, subId, filters) {
      let subs = byConnection.get(who);
      if (!subs) byConnection.set(who, subs = new Map());
      const old = subs.get(subId);
      if (old) drop(old);
      const sub: Sub = { who, subId, entries: [] };
      sub.entries = filters.map((filter) => ({ sub, filter, keys: indexKeys(filter) }));
      for (const entry of sub.entries) file(entry);
      subs.set(subId, sub);
      total++;
    },
    remove(who, subId) {
      const subs = byConnection.get(who);
      const sub = subs?.get(subId);
      if (!sub) return false;
      drop(sub);
      subs!.delete(subId);
      return true;
    },
    removeAll(who) {
      for (const sub of byConnection.get(who)?.values() ?? []) drop(sub);
      byConnection.delete(who);
    },
    count: (who) => byConnection.get(who)?.size ?? 0,
    has: (who, subId) => byConnection.get(who)?.has(subId) ?? false,
    broadcast(ev) {
      let tested = 0;
      const matched = new Set<Sub>();
      const test = (entries: Iterable<Entry> | undefined) => {
        for (const entry of entries ?? []) {
          if (matched.has(entry.sub)) continue;
          tested++;
          if (matchFilter(entry.filter, ev)) matched.add(entry.sub);
        }
      };
      test(index.get(`i:${ev.id}`));
      test(index.get(`a:${ev.pubkey}`));
      for (const t of ev.tags) {
        if (t.length > 1 && t[0].length === 1) test(index.get(`t:${t[0]}:${t[1]}`));
      }
      test(index.get(`k:${ev.kind}`));
      test(fallback);
      // Read rights once per connection, whatever number of its subscriptions matched.
      const readable = new Map<Subscriber, boolean>();
      for (const sub of matched) {
        let may = readable.get(sub.who);
        if (may === undefined) readable.set(sub.who, may = sub.who.mayRead(ev));
        if (may) sub.who.deliver(sub.subId, ev);
      }
      return tested;
    },
    size: () => total,
  };
}

/**
 * The keys a filter is filed under: one family, the most selective it constrains. An event
 * matching the filter carries one of these keys, so looking up the event's keys finds it.
 * Undefined for a filter with an empty list, which matches nothing (NIP-01).
 */
function indexKeys(f: Filter): string[] | undefined {
  const lists = [f.ids, f.authors, f.kinds, ...tagFilters(f).map(([, values]) => values)];
  if (lists.some((l) => l !== undefined && l.length === 0)) return undefined;
  if (f.ids !== undefined) return f.ids.map((id) => `i:${id}`);
  if (f.authors !== undefined) return f.authors.map((pk) => `a:${pk}`);
  const tags = tagFilters(f);
  if (tags.length > 0) {
    const [name, values] = tags[0];
    return values.map((v) => `t:${name}:${v}`);
  }
  if (f.kinds !== undefined) return f.kinds.map((k) => `k:${k}`);
  return [];
}
