// Live subscriptions of every connection: after EOSE, each newly accepted event is offered to
// each open REQ whose filters match it and whose connection may read it.
import type { NostrEvent } from "../protocol/mod.ts";
import { type Filter, matchFilter } from "./filter.ts";

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
  broadcast(ev: NostrEvent): void;
  /** Open subscriptions across all connections. */
  size(): number;
}

export function createSubscriptionHub(): SubscriptionHub {
  const byConnection = new Map<Subscriber, Map<string, Filter[]>>();
  let total = 0;
  return {
    set(who, subId, filters) {
      let subs = byConnection.get(who);
      if (!subs) byConnection.set(who, subs = new Map());
      if (!subs.has(subId)) total++;
      subs.set(subId, filters);
    },
    remove(who, subId) {
      const removed = byConnection.get(who)?.delete(subId) ?? false;
      if (removed) total--;
      return removed;
    },
    removeAll(who) {
      total -= byConnection.get(who)?.size ?? 0;
      byConnection.delete(who);
    },
    count: (who) => byConnection.get(who)?.size ?? 0,
    has: (who, subId) => byConnection.get(who)?.has(subId) ?? false,
    broadcast(ev) {
      for (const [who, subs] of byConnection) {
        let readable: boolean | undefined;
        for (const [subId, filters] of subs) {
          if (!filters.some((f) => matchFilter(f, ev))) continue;
          readable ??= who.mayRead(ev);
          if (!readable) break;
          who.deliver(subId, ev);
        }
      }
    },
    size: () => total,
  };
}
