/**
 * Prometheus text exposition (format 0.0.4) of what a node's HTTP side sees:
 * requests, tokens, time to first token, latency, and the service's load.
 */
import type { ServiceLoad } from "../mesh/mod.ts";

export interface InferenceRecord {
  endpoint: "chat" | "completions";
  /** The model that answered (GET /api/timings shows it; the metrics leave it out). */
  modelId?: string;
  outcome: "ok" | "error" | "cancelled";
  ttftSeconds?: number;
  durationSeconds: number;
  promptTokens: number;
  /** Of promptTokens, those the serving node took from its cache (`timings.cached_n`). */
  cachedTokens?: number;
  completionTokens: number;
}

export interface Metrics {
  httpRequest(path: string, status: number): void;
  inference(record: InferenceRecord): void;
  /** Requests whose handler has not answered yet (a stream counts until its headers go out). */
  inFlight(delta: number): void;
  render(load?: ServiceLoad): string;
}

const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

interface Histogram {
  buckets: number[];
  counts: number[]; // per bucket, not cumulative; rendered cumulative
  sum: number;
  count: number;
}

function histogram(buckets: number[]): Histogram {
  return { buckets, counts: buckets.map(() => 0), sum: 0, count: 0 };
}

function observe(h: Histogram, v: number): void {
  const i = h.buckets.findIndex((b) => v <= b);
  if (i >= 0) h.counts[i]++;
  h.sum += v;
  h.count++;
}

export function createMetrics(): Metrics {
  const http = new Map<string, number>(); // labels text → count
  const inferences = new Map<string, number>();
  let promptTokens = 0;
  let completionTokens = 0;
  let inFlight = 0;
  const ttft = histogram(TTFT_BUCKETS);
  const duration = histogram(DURATION_BUCKETS);
  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

  return {
    httpRequest(path, status) {
      bump(http, `path="${escapeLabel(path)}",status="${status}"`);
    },
    inference(r) {
      bump(inferences, `endpoint="${r.endpoint}",outcome="${r.outcome}"`);
      promptTokens += r.promptTokens;
      completionTokens += r.completionTokens;
      if (r.ttftSeconds !== undefined) observe(ttft, r.ttftSeconds);
      if (r.outcome === "ok") observe(duration, r.durationSeconds);
    },
    inFlight(delta) {
      inFlight += delta;
    },
    render(load) {
      const out: string[] = [];
      const family = (name: string, type: string, help: string) =>
        out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      family("grove_http_requests_total", "counter", "HTTP requests answered, by path and status.");
      for (const [labels, n] of http) out.push(`grove_http_requests_total{${labels}} ${n}`);
      family("grove_inference_requests_total", "counter", "Inference requests by outcome.");
      for (const [labels, n] of inferences) {
        out.push(`grove_inference_requests_total{${labels}} ${n}`);
      }
      family("grove_prompt_tokens_total", "counter", "Prompt tokens processed.");
      out.push(`grove_prompt_tokens_total ${promptTokens}`);
      family("grove_completion_tokens_total", "counter", "Tokens generated.");
      out.push(`grove_completion_tokens_total ${completionTokens}`);
      family("grove_time_to_first_token_seconds", "histogram", "Arrival to first token.");
      renderHistogram(out, "grove_time_to_first_token_seconds", ttft);
      family("grove_request_duration_seconds", "histogram", "Arrival to last token.");
      renderHistogram(out, "grove_request_duration_seconds", duration);
      family("grove_http_requests_in_flight", "gauge", "HTTP requests being answered now.");
      out.push(`grove_http_requests_in_flight ${inFlight}`);
      family("grove_requests_active", "gauge", "Generations running now.");
      out.push(`grove_requests_active ${load?.active ?? 0}`);
      family("grove_requests_queued", "gauge", "Generations waiting for their turn.");
      out.push(`grove_requests_queued ${load?.queued ?? 0}`);
      // The process' own memory, so growth under load is seen without a heap snapshot.
      const mem = Deno.memoryUsage();
      family("process_resident_memory_bytes", "gauge", "Resident memory of this process.");
      out.push(`process_resident_memory_bytes ${mem.rss}`);
      family("grove_heap_used_bytes", "gauge", "JavaScript heap in use.");
      out.push(`grove_heap_used_bytes ${mem.heapUsed}`);
      family("grove_heap_total_bytes", "gauge", "JavaScript heap reserved.");
      out.push(`grove_heap_total_bytes ${mem.heapTotal}`);
      family("grove_external_memory_bytes", "gauge", "Memory outside the heap held by it.");
      out.push(`grove_external_memory_bytes ${mem.external}`);
      return out.join("\n") + "\n";
    },
  };
}

function renderHistogram(out: string[], name: string, h: Histogram): void {
  let cumulative = 0;
  h.buckets.forEach((b, i) => {
    cumulative += h.counts[i];
    out.push(`${name}_bucket{le="${b}"} ${cumulative}`);
  });
  out.push(
    `${name}_bucket{le="+Inf"} ${h.count}`,
    `${name}_sum ${h.sum}`,
    `${name}_count ${h.count}`,
  );
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
