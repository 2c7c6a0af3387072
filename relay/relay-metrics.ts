/**
 * `GET /metrics` (docs/operating-a-relay.md#metrics): the rendezvous' traffic in Prometheus text
 * format, for the relay's owner and admins only. Each request carries NIP-98 auth whose `u` is
 * `HTTP_URL/metrics` and whose method is GET, signed by an owner or admin (the same check and
 * budgets as NIP-86, with its own replay cache); 401 without valid auth, 403 for anyone else,
 * 429 past a budget. Members' traffic volumes say who talks to whom how much: not public.
 */
import { type Logger, type ReplayCache, verifyNip98 } from "../protocol/mod.ts";
import type { MemberStore } from "./members.ts";
import { acceptMember, chargeIp, type Nip98Rates, refundIp } from "./nip98-rates.ts";
import type { RendezvousMetrics } from "./rendezvous.ts";

export interface MetricsComponents {
  members: Pick<MemberStore, "role">;
  /** `HTTP_URL/metrics`, which NIP-98 `u` must name; defaults to the request's URL. */
  url?: string;
  /** Undefined while no rendezvous runs (or with --mesh-port -1). */
  rendezvous: () => RendezvousMetrics | undefined;
  replay: ReplayCache;
  rates?: Nip98Rates;
  /** UNIX seconds. */
  now: () => number;
  log?: Logger;
}

export function handleMetrics(
  req: Request,
  c: MetricsComponents,
  ip?: string,
): Promise<Response> {
  return Promise.resolve(answer(req, c, ip));
}

function answer(req: Request, c: MetricsComponents, ip?: string): Response {
  const wait = chargeIp(c.rates, ip);
  if (wait !== undefined) {
    return text(429, `rate-limited: too many refused requests; retry in ${wait} s\n`, {
      "retry-after": String(wait),
    });
  }
  const auth = verifyNip98({
    url: c.url ?? req.url,
    method: req.method,
    authorization: req.headers.get("authorization"),
  }, { now: c.now, replay: c.replay });
  if (!auth.ok) return text(401, `unauthorized: ${auth.reason}\n`);
  const role = c.members.role(auth.pubkey);
  if (auth.delegatedBy !== undefined || (role !== "owner" && role !== "admin")) {
    c.log?.warn(`metrics refused to ${auth.pubkey.slice(0, 8)}…: not an owner or admin`);
    return text(403, "restricted: only the relay's owner or an admin\n");
  }
  const accepted = acceptMember(c.rates, c.replay, auth.pubkey, auth.event.id, c.now());
  if (!accepted.ok) {
    return text(accepted.status, `${accepted.reason}\n`, {
      "retry-after": String(accepted.retryAfter),
    });
  }
  refundIp(c.rates, ip);
  return text(200, renderMetrics(c.rendezvous()), {
    "content-type": "text/plain; version=0.0.4; charset=utf-8",
  });
}

/** Prometheus text exposition; without a rendezvous every value is 0 and up is 0. */
export function renderMetrics(m: RendezvousMetrics | undefined): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, values: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of values) lines.push(`${name}${labels} ${v}`);
  };
  metric("grove_rendezvous_up", "gauge", "1 while the rendezvous (libp2p) runs.", [[
    "",
    m ? 1 : 0,
  ]]);
  metric(
    "grove_relay_relayed_bytes_total",
    "counter",
    "Bytes carried through the relay's circuits, by the side they came from.",
    [
      ['{from="dialer"}', m?.fromDialers ?? 0],
      ['{from="listener"}', m?.fromListeners ?? 0],
    ],
  );
  metric("grove_relay_circuits_opened_total", "counter", "Circuits opened through the relay.", [[
    "",
    m?.circuitsOpened ?? 0,
  ]]);
  metric("grove_relay_circuits_open", "gauge", "Circuits open now.", [["", m?.circuitsOpen ?? 0]]);
  metric("grove_relay_reservations", "gauge", "Circuit reservations held now.", [[
    "",
    m?.reservations ?? 0,
  ]]);
  metric("grove_rendezvous_connections", "gauge", "Open libp2p connections.", [[
    "",
    m?.connections ?? 0,
  ]]);
  return lines.join("\n") + "\n";
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
