/**
 * The messages of `/grove/stage/1` (docs/protocol.md#grovestage1) as types, and their checks:
 * each side reads what the other sent through one of the parse functions here, so a malformed
 * frame is refused with a reason naming the field instead of failing somewhere later.
 */
import type { SamplerOptions } from "../inference/mod.ts";
import type { StageCandidate } from "./stage-plan.ts";
import { isObject } from "./frame-checks.ts";

export const STAGE_PROTOCOL = "/grove/stage/1";

export type StageErrorCode = "plan_mismatch" | "unavailable" | "invalid_request" | "busy";
const ERROR_CODES: readonly string[] = ["plan_mismatch", "unavailable", "invalid_request", "busy"];

/** What a coordinator asks a stage node to run: one stage of one plan. */
export interface StageOpen {
  planId: string;
  /** The GGUF's sha256 (64 lowercase hex). */
  sha256: string;
  candidates: StageCandidate[];
  ctxSize: number;
  /** Layers [start, end). */
  range: [number, number];
}

/** A stage's answer to an open: what it runs and the most one step may carry. */
export interface StageReady {
  range: [number, number];
  /** Width of a hidden-state row (f32 values). */
  dim: number;
  /** Most rows (tokens of all sessions together) in one step. */
  maxRows: number;
  /** Most sessions open at once on this stage, over all coordinators. */
  maxSlots: number;
}

/** How the last stage samples a new session (the others ignore it). */
export interface StageSessionOpen {
  /** Resolved options: the seed is set. */
  sampler: SamplerOptions;
  /** Continue the draws from here (a session moved to a new plan), 4 × uint32. */
  rngState?: number[];
}

/** One session's new tokens in a step. */
export interface StageStepRow {
  session: string;
  tokens: number[];
  /** Sample a token after the last of `tokens` (last stage); false for a prefill chunk. */
  sample: boolean;
  /** Required in a session's first row. */
  open?: StageSessionOpen;
}

/** A token the last stage sampled, with the RNG state after it (to continue elsewhere). */
export interface StagePick {
  session: string;
  id: number;
  /** Log-probability under the model's raw distribution. */
  logprob: number;
  /** The alternatives asked for (`topLogprobs`), best first, as [id, logprob]. */
  top?: [number, number][];
  /** The session sampler's RNG state after this pick, 4 × uint32. */
  rng?: number[];
}

/** A step's answer: hidden states for the next stage, or (last stage) one pick per row. */
export type StageStepResult = { hidden: Float32Array } | { picks: (StagePick | null)[] };

/** One stage as a coordinator steps it: in process (localStageCall) or remote (StageLink). */
export interface StageCall {
  peerId: string;
  /** Layers [start, end). */
  range: [number, number];
  /**
   * Runs one step: `hidden` holds Σ tokens × dim values, the previous stage's output (stage 0:
   * none, it embeds the tokens). Resolves with this stage's hidden states, or (last stage) one
   * pick per row, null where the row does not sample.
   */
  step(rows: readonly StageStepRow[], hidden?: Float32Array): Promise<StageStepResult>;
  /** Frees the sessions' slots on the stage; nothing is answered. */
  close(sessions: readonly string[]): void;
  /** Ends the call: pending steps fail and the stage frees every session of this call. */
  destroy(): void;
}

/** A stage refuses: the error frame it sends, and what the host throws to refuse an open. */
export class StageRefusal extends Error {
  override name = "StageRefusal";
  constructor(readonly code: StageErrorCode, message: string) {
    super(message);
  }
}

const MAX_SESSION_ID = 128;
const MAX_CANDIDATES = 1024;
const SAMPLER_KEYS = [
  "temperature",
  "topK",
  "topP",
  "minP",
  "repeatPenalty",
  "repeatLastN",
  "presencePenalty",
  "frequencyPenalty",
  "seed",
  "topLogprobs",
] as const;

export function parseOpen(h: Record<string, unknown>): StageOpen {
  const planId = hex(h.planId, "planId");
  const sha256 = hex(h.sha256, "sha256");
  if (h.hidden !== "f32") invalid(`hidden must be "f32", got ${shown(h.hidden)}`);
  if (!Array.isArray(h.candidates) || h.candidates.length > MAX_CANDIDATES) {
    invalid(`candidates must be an array of at most ${MAX_CANDIDATES}`);
  }
  const candidates = h.candidates.map((c: unknown, i: number) => {
    if (!isObject(c) || typeof c.peerId !== "string" || c.peerId.length > 256) {
      invalid(`candidates[${i}].peerId must be a peer id`);
    }
    if (typeof c.memoryBytes !== "number" || !(c.memoryBytes >= 0)) {
      invalid(`candidates[${i}].memoryBytes must be a number of bytes`);
    }
    return { peerId: c.peerId, memoryBytes: c.memoryBytes };
  });
  if (!isCount(h.ctxSize) || h.ctxSize < 1) invalid("ctxSize must be a positive integer");
  return { planId, sha256, candidates, ctxSize: h.ctxSize, range: range(h.range) };
}

export function parseReady(h: Record<string, unknown>): StageReady {
  const r = range(h.range);
  if (!isCount(h.dim) || h.dim < 1) invalid("ready.dim must be a positive integer");
  if (!isCount(h.maxRows) || h.maxRows < 1) invalid("ready.maxRows must be a positive integer");
  if (!isCount(h.maxSlots) || h.maxSlots < 1) invalid("ready.maxSlots must be a positive integer");
  return { range: r, dim: h.dim, maxRows: h.maxRows, maxSlots: h.maxSlots };
}

export function parseStep(h: Record<string, unknown>): { seq: number; rows: StageStepRow[] } {
  if (!isCount(h.seq)) invalid("step.seq must be an integer ≥ 0");
  if (!Array.isArray(h.rows) || h.rows.length === 0) invalid("step.rows must be a non-empty array");
  const seen = new Set<string>();
  const rows = h.rows.map((r: unknown, i: number): StageStepRow => {
    const at = `step.rows[${i}]`;
    if (!isObject(r)) invalid(`${at} must be an object`);
    const session = sessionId(r.session, `${at}.session`);
    if (seen.has(session)) invalid(`${at}: session ${session} appears twice in one step`);
    seen.add(session);
    if (!Array.isArray(r.tokens) || r.tokens.length === 0 || !r.tokens.every(isCount)) {
      invalid(`${at}.tokens must be a non-empty array of token ids`);
    }
    if (r.sample !== undefined && typeof r.sample !== "boolean") {
      invalid(`${at}.sample must be a boolean`);
    }
    const row: StageStepRow = { session, tokens: r.tokens, sample: r.sample === true };
    if (r.open !== undefined) row.open = sessionOpen(r.open, `${at}.open`);
    return row;
  });
  return { seq: h.seq, rows };
}

export function parseClose(h: Record<string, unknown>): string[] {
  if (!Array.isArray(h.sessions)) invalid("close.sessions must be an array");
  return h.sessions.map((s: unknown, i: number) => sessionId(s, `close.sessions[${i}]`));
}

export function parsePicks(h: Record<string, unknown>): (StagePick | null)[] {
  if (!Array.isArray(h.picks)) invalid("picks.picks must be an array");
  return h.picks.map((p: unknown, i: number): StagePick | null => {
    if (p === null) return null;
    const at = `picks[${i}]`;
    if (!isObject(p)) invalid(`${at} must be an object or null`);
    const pick: StagePick = {
      session: sessionId(p.session, `${at}.session`),
      id: isCount(p.id) ? p.id : invalid(`${at}.id must be a token id`),
      logprob: typeof p.logprob === "number"
        ? p.logprob
        : invalid(`${at}.logprob must be a number`),
    };
    if (p.top !== undefined) {
      const pairs = Array.isArray(p.top) ? p.top : invalid(`${at}.top must be an array`);
      pick.top = pairs.map((t: unknown): [number, number] => {
        if (!Array.isArray(t) || t.length !== 2 || !isCount(t[0]) || !isLogprob(t[1])) {
          invalid(`${at}.top must hold [id, logprob] pairs`);
        }
        return [t[0], t[1] ?? -Infinity];
      });
    }
    if (p.rng !== undefined) pick.rng = rngWords(p.rng, `${at}.rng`);
    return pick;
  });
}

/** An error frame's code; one this version does not know reads as `unavailable`. */
export function errorCode(v: unknown): StageErrorCode {
  return typeof v === "string" && ERROR_CODES.includes(v) ? v as StageErrorCode : "unavailable";
}

/**
 * `err` as a refusal when it is one: a StageRefusal, or any error with a stage error code (a
 * host may have its own refusal class).
 */
export function asRefusal(err: unknown): StageRefusal | undefined {
  if (err instanceof StageRefusal) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === "string" && ERROR_CODES.includes(code)) {
    return new StageRefusal(code as StageErrorCode, err.message);
  }
  return undefined;
}

function sessionOpen(v: unknown, at: string): StageSessionOpen {
  if (!isObject(v) || !isObject(v.sampler)) invalid(`${at}.sampler must be an object`);
  const sampler: Record<string, number> = {};
  for (const [key, value] of Object.entries(v.sampler)) {
    if (!(SAMPLER_KEYS as readonly string[]).includes(key)) {
      invalid(`${at}.sampler.${key} is not a sampler option (${SAMPLER_KEYS.join(", ")})`);
    }
    if (typeof value !== "number" || !Number.isFinite(value)) {
      invalid(`${at}.sampler.${key} must be a number`);
    }
    sampler[key] = value;
  }
  const open: StageSessionOpen = { sampler };
  if (v.rngState !== undefined) open.rngState = rngWords(v.rngState, `${at}.rngState`);
  return open;
}

function rngWords(v: unknown, at: string): number[] {
  const ok = Array.isArray(v) && v.length === 4 && v.every((w) => isCount(w) && w < 2 ** 32);
  return ok ? v : invalid(`${at} must be 4 uint32 words`);
}

function range(v: unknown): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !isCount(v[0]) || !isCount(v[1]) || v[0] >= v[1]) {
    invalid(`range must be [start, end) layers with start < end, got ${shown(v)}`);
  }
  return [v[0], v[1]];
}

function hex(v: unknown, name: string): string {
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) {
    invalid(`${name} must be 64 lowercase hex digits`);
  }
  return v;
}

function sessionId(v: unknown, at: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_SESSION_ID) {
    invalid(`${at} must be a string of 1–${MAX_SESSION_ID} characters`);
  }
  return v;
}

/** JSON has no infinities: a logprob of −∞ (a token the model rules out) travels as null. */
function isLogprob(v: unknown): v is number | null {
  return v === null || (typeof v === "number" && Number.isFinite(v));
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export { isObject };

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function invalid(message: string): never {
  throw new StageRefusal("invalid_request", message);
}
