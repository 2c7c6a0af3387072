/**
 * A serving node's serve reports (kind 24620, docs/protocol.md#kind-24620-serve-report): signed by
 * the node's key, sent to the relay every 10 s and soon after every change, and a last one with
 * state "stopping" so the relay withdraws the target at once instead of after 30 s of silence.
 *
 * Reports are checked here before signing, so a bad one is a clear local error rather than a
 * relay's OK false: the peer id must be the node's own, and the model id no local path.
 */
import { finalizeEvent } from "nostr-tools/pure";
import {
  KIND,
  type Logger,
  type NostrEvent,
  parseServeReport,
  type ServeReport,
  settleWithin,
  silentLogger,
} from "../protocol/mod.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import type { Identity } from "./node-identity.ts";
import type { RelayClient } from "./relay-client.ts";

export interface ServeReporterOptions {
  relay: Pick<RelayClient, "publish">;
  identity: Identity;
  /** The current report; called at each send. */
  report: () => ServeReport;
  intervalMs?: number;
  /** How long changed() waits for more changes before sending. */
  debounceMs?: number;
  /**
   * Least time from one report to a report for a change (default 1 s). Every request starts and
   * ends a load change; each report costs a signature here and checks at the relay and at every
   * member (a few ms of CPU), so a busy node reports at most once a second.
   */
  minChangeGapMs?: number;
  log?: Logger;
  /** The interval, the debounce, the change gap and the last report's bound run on it. */
  clock?: Clock;
}

export interface ServeReporter {
  /** Something in the report changed: send soon (debounced). */
  changed(): void;
  /** Stops the timers and sends a final report with state "stopping". */
  stop(): Promise<void>;
}

// The relay's rule (relay/mesh-status-publisher.ts): catalog ids and hf:// refs pass, file paths do
// not.
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+/-]{0,127}$/;
const LOCAL_DIR = /\/(home|Users|root|tmp|var|etc|mnt|opt|srv|private|Volumes)\//;

/** The signed kind 24620 event for a report; throws naming what is wrong with it. */
export function serveReportEvent(identity: Identity, report: ServeReport): NostrEvent {
  if (report.peerId !== identity.peerId) {
    throw new Error(`serve report peerId ${report.peerId} is not this node's ${identity.peerId}`);
  }
  const content = JSON.stringify(report);
  parseServeReport(content); // names the bad field, e.g. a modelId that is a local path
  if (!MODEL_ID.test(report.modelId) || LOCAL_DIR.test(report.modelId)) {
    throw new Error(
      `serve report modelId ${JSON.stringify(report.modelId.slice(0, 80))} is no catalog id, ` +
        "hf:// ref or plain name (local paths are never published)",
    );
  }
  return finalizeEvent({
    kind: KIND.SERVE_REPORT,
    created_at: Math.floor(Date.now() / 1000),
    tags: [["-"]], // NIP-70: only this node may publish its own report
    content,
  }, identity.secretKey);
}

/** How long a stopping node waits for its last report to reach the relay. */
const FINAL_REPORT_MS = 500;

export function startServeReporter(opts: ServeReporterOptions): ServeReporter {
  const log = opts.log ?? silentLogger;
  const clock = opts.clock ?? systemClock;
  const debounceMs = opts.debounceMs ?? 100;
  let stopped = false;
  let debounce: Timer | undefined;
  // Sends run one at a time, in order: a late "running" must never overtake "stopping".
  let chain: Promise<void> = Promise.resolve();
  let lastError = "";
  let lastSent = -Infinity;
  const minGap = opts.minChangeGapMs ?? 1000;

  const send = (override?: Partial<ServeReport>) => {
    chain = chain.then(async () => {
      lastSent = clock.now();
      try {
        const ev = serveReportEvent(opts.identity, { ...opts.report(), ...override });
        await opts.relay.publish(ev);
        if (lastError !== "") log.info("serve reports reach the relay again");
        lastError = "";
      } catch (err) {
        const msg = (err as Error).message;
        // One line per new failure, not one every 10 s.
        if (msg !== lastError) log.warn(`could not send the serve report: ${msg}`);
        lastError = msg;
      }
    });
    return chain;
  };

  const interval = clock.setInterval(() => void send(), opts.intervalMs ?? 10_000);
  void send();

  return {
    changed() {
      if (stopped || debounce !== undefined) return;
      const wait = Math.max(debounceMs, lastSent + minGap - clock.now());
      debounce = clock.setTimeout(() => {
        debounce = undefined;
        if (!stopped) void send();
      }, wait);
    },
    async stop() {
      if (stopped) return chain;
      stopped = true;
      clock.clearInterval(interval);
      clock.clearTimeout(debounce);
      // Best effort: with the relay gone the report would wait out the publish timeout (10 s)
      // and hold up the node's stop. The relay drops a silent target after 30 s anyway.
      await settleWithin(send({ state: "stopping" }), FINAL_REPORT_MS, clock);
    },
  };
}
