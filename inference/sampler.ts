/**
 * Token sampler, in the order of llama.cpp's default chain:
 * logit bias → penalties → top-k → top-p → min-p → temperature → draw.
 *
 * Reported logprobs are log-softmax of the model's raw logits (before
 * penalties, temperature and truncation). That is the model's own
 * distribution, which is what OpenAI-style `logprobs` describe and what
 * llama.cpp's server reports by default; it does not change with the
 * sampling settings, so a greedy and a creative run agree on it.
 */

import { createRng, type Rng, rngFromState } from "./rng.ts";

export interface SamplerOptions {
  /** 0 (or below) = greedy argmax. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or ≥ vocab = off. */
  topK?: number;
  /** Nucleus: the smallest top set whose probability reaches p; 1 = off. */
  topP?: number;
  /** Drop tokens whose probability is below minP × the top one's; 0 = off. */
  minP?: number;
  /** llama.cpp repetition penalty (divide positive logits, multiply negative); 1 = off. */
  repeatPenalty?: number;
  /** How many of the latest history tokens the penalties look at; 0 = none, -1 = all. */
  repeatLastN?: number;
  /** OpenAI presence penalty: subtracted once from any token seen in the window. */
  presencePenalty?: number;
  /** OpenAI frequency penalty: subtracted once per occurrence in the window. */
  frequencyPenalty?: number;
  /** RNG seed; none = random (read it back from `sampler.seed`). */
  seed?: number;
  /** How many alternatives to report in `topLogprobs`; 0 = none. */
  topLogprobs?: number;
  /**
   * OpenAI's logit_bias: token id → added to its logit before anything else, in [-100, 100];
   * -100 bans the token outright (its logit becomes -Infinity), whatever the other logits are.
   */
  logitBias?: Readonly<Record<string, number>>;
}

/** The options a sampler runs with: every number resolved, the bias only when one was given. */
export type ResolvedSamplerOptions =
  & Required<Omit<SamplerOptions, "seed" | "logitBias">>
  & Pick<SamplerOptions, "logitBias">;

/** OpenAI's bounds for one logit_bias value. */
export const MAX_LOGIT_BIAS = 100;

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface SampledToken {
  id: number;
  /** Log-probability of `id` under the model's raw distribution. */
  logprob: number;
  /** The n most likely tokens under the raw distribution, best first. */
  topLogprobs?: TokenLogprob[];
}

export interface Sampler {
  readonly seed: number;
  readonly options: Readonly<ResolvedSamplerOptions>;
  sample(logits: Float32Array, history: readonly number[]): SampledToken;
  /** The RNG's state now (xoshiro128**, 4 × uint32): a sampler made with it continues exactly. */
  rngState(): number[];
}

export interface SamplerInit extends SamplerOptions {
  /** When given, every logitBias id must be below it (the model's vocabulary). */
  vocabSize?: number;
  /**
   * Continue a sampler's draws from this state (its `rngState()`) instead of starting from the
   * seed, which is then only reported.
   */
  rngState?: readonly number[];
}

/** llama.cpp's defaults (common_params_sampling), used for any option left out. */
export const DEFAULT_SAMPLER_OPTIONS: Readonly<
  Required<Omit<SamplerOptions, "seed" | "logitBias">>
> = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
  presencePenalty: 0,
  frequencyPenalty: 0,
  topLogprobs: 0,
};

export function createSampler(init: SamplerInit = {}): Sampler {
  const { rngState, vocabSize, ...options } = init;
  const opts = resolve(options, vocabSize);
  const rng = rngState
    ? rngFromState(checkedState(rngState), options.seed)
    : createRng(options.seed);
  return {
    seed: rng.seed,
    options: opts,
    sample: (logits, history) => sampleOnce(opts, rng, logits, history),
    rngState: () => rng.state(),
  };
}

/** A state from the wire: 4 uint32 words, not all zero (the one state xoshiro cannot leave). */
function checkedState(state: readonly number[]): readonly number[] {
  const ok = state.length === 4 &&
    state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) && state.some((w) => w !== 0);
  if (!ok) {
    throw new RangeError(`sampler rngState must be 4 uint32 words, not all 0; got ${state}`);
  }
  return state;
}

function sampleOnce(
  opts: ResolvedSamplerOptions,
  rng: Rng,
  logits: Float32Array,
  history: readonly number[],
): SampledToken {
  const n = logits.length;
  if (n === 0) throw new RangeError("cannot sample from an empty logits array");
  const working = penalties(opts, biased(opts, logits), history);
  if (maxOf(working) === -Infinity) throw new RangeError("every token is excluded: none to sample");

  const id = opts.temperature <= 0
    ? argmax(working)
    : draw(truncate(opts, working), opts.temperature, rng);

  const lse = logSumExp(logits);
  const result: SampledToken = { id, logprob: logits[id] - lse };
  if (opts.topLogprobs > 0) {
    const top = topK(logits, Math.min(opts.topLogprobs, n));
    result.topLogprobs = Array.from(
      top.ids,
      (tid, k) => ({ id: tid, logprob: top.logits[k] - lse }),
    );
  }
  return result;
}

/**
 * The tokens the draw may pick from after penalties, top-k, top-p and min-p,
 * best first (exported for tests and debugging; `sample` uses the same steps).
 */
export function candidateSet(
  logits: Float32Array,
  history: readonly number[],
  options: SamplerOptions = {},
): number[] {
  const opts = resolve(options);
  return Array.from(
    sortCandidates(truncate(opts, penalties(opts, biased(opts, logits), history))).ids,
  );
}

/** Logits after the bias and the penalties alone (a copy; the input is never mutated). */
export function penalize(
  logits: Float32Array,
  history: readonly number[],
  options: SamplerOptions = {},
): Float32Array {
  const opts = resolve(options);
  const out = penalties(opts, biased(opts, logits), history);
  return out === logits ? logits.slice() : out;
}

/** Logits with the bias added: the input itself when there is none (never mutated). */
function biased(opts: ResolvedSamplerOptions, logits: Float32Array): Float32Array {
  const bias = opts.logitBias;
  if (bias === undefined) return logits;
  const out = logits.slice();
  for (const [key, value] of Object.entries(bias)) {
    const id = Number(key);
    if (id >= out.length) continue; // checked against the vocabulary when one was given
    out[id] = value <= -MAX_LOGIT_BIAS ? -Infinity : out[id] + value;
  }
  return out;
}

function truncate(opts: ResolvedSamplerOptions, working: Float32Array): Candidates {
  const n = working.length;
  let c = opts.topK > 0 && opts.topK < n ? topK(working, opts.topK) : all(working);
  if (opts.topP < 1) c = topP(c, opts.topP);
  if (opts.minP > 0) c = minP(c, opts.minP);
  return c;
}

/** Candidates as parallel arrays; `sorted` = descending by logit, ties by id. */
interface Candidates {
  ids: Int32Array;
  logits: Float32Array;
  sorted: boolean;
}

/** Whether these options' penalties can move any logit: a penalty set and a window to look at. */
export function penalizes(
  o: Pick<
    ResolvedSamplerOptions,
    "repeatPenalty" | "presencePenalty" | "frequencyPenalty" | "repeatLastN"
  >,
): boolean {
  return o.repeatLastN !== 0 &&
    (o.repeatPenalty !== 1 || o.presencePenalty !== 0 || o.frequencyPenalty !== 0);
}

/** Logits with the penalties applied: the input itself when none apply (never mutated). */
function penalties(
  opts: ResolvedSamplerOptions,
  logits: Float32Array,
  history: readonly number[],
): Float32Array {
  const { repeatPenalty, presencePenalty, frequencyPenalty, repeatLastN } = opts;
  if (!penalizes(opts)) return logits;
  const start = repeatLastN < 0 ? 0 : Math.max(0, history.length - repeatLastN);
  const counts = new Map<number, number>();
  for (let i = start; i < history.length; i++) {
    const t = history[i];
    if (t >= 0 && t < logits.length) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  if (counts.size === 0) return logits;
  const out = logits.slice();
  for (const [t, count] of counts) {
    const v = logits[t];
    out[t] = (v > 0 ? v / repeatPenalty : v * repeatPenalty) - count * frequencyPenalty -
      presencePenalty;
  }
  return out;
}

/** Highest value; ties go to the lowest index. */
export function argmax(values: Float32Array): number {
  let best = 0;
  let bestV = values[0];
  for (let i = 1; i < values.length; i++) {
    const v = values[i];
    if (v > bestV) {
      best = i;
      bestV = v;
    }
  }
  return best;
}

/** Every token but the excluded ones (-Infinity: banned by a bias or masked by a grammar). */
function all(values: Float32Array): Candidates {
  let kept = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== -Infinity) kept++;
  if (kept === values.length) {
    const ids = new Int32Array(values.length);
    for (let i = 0; i < ids.length; i++) ids[i] = i;
    return { ids, logits: values.slice(), sorted: false };
  }
  const ids = new Int32Array(kept);
  const logits = new Float32Array(kept);
  for (let i = 0, k = 0; i < values.length; i++) {
    if (values[i] === -Infinity) continue;
    ids[k] = i;
    logits[k++] = values[i];
  }
  return { ids, logits, sorted: false };
}

/**
 * The k best tokens, sorted, by a size-k min-heap: O(n log k), so a 150k vocab
 * is never fully sorted. The heap root is the worst kept token.
 */
function topK(values: Float32Array, k: number): Candidates {
  const heapIds = new Int32Array(k);
  const heapV = new Float32Array(k);
  // a is worse than b: lower value, or equal value and higher index.
  const worse = (av: number, ai: number, bv: number, bi: number) =>
    av < bv || (av === bv && ai > bi);
  let size = 0;
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      const r = l + 1;
      let m = pos;
      if (l < size && worse(heapV[l], heapIds[l], heapV[m], heapIds[m])) m = l;
      if (r < size && worse(heapV[r], heapIds[r], heapV[m], heapIds[m])) m = r;
      if (m === pos) return;
      swap(heapIds, heapV, pos, m);
      pos = m;
    }
  };
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (size < k) {
      let pos = size++;
      heapIds[pos] = i;
      heapV[pos] = v;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(heapV[pos], heapIds[pos], heapV[parent], heapIds[parent])) break;
        swap(heapIds, heapV, pos, parent);
        pos = parent;
      }
    } else if (worse(heapV[0], heapIds[0], v, i)) {
      heapIds[0] = i;
      heapV[0] = v;
      siftDown(0);
    }
  }
  return sortCandidates({ ids: heapIds, logits: heapV, sorted: false });
}

function swap(ids: Int32Array, v: Float32Array, a: number, b: number): void {
  const ti = ids[a];
  ids[a] = ids[b];
  ids[b] = ti;
  const tv = v[a];
  v[a] = v[b];
  v[b] = tv;
}

function sortCandidates(c: Candidates): Candidates {
  if (c.sorted) return c;
  const order = Array.from(c.ids.keys()).sort((a, b) =>
    c.logits[b] - c.logits[a] || c.ids[a] - c.ids[b]
  );
  return {
    ids: Int32Array.from(order, (k) => c.ids[k]),
    logits: Float32Array.from(order, (k) => c.logits[k]),
    sorted: true,
  };
}

/** Keeps the candidates whose value passes `keep`, in order. */
function filter(c: Candidates, keep: (v: number) => boolean): Candidates {
  const ids: number[] = [];
  const logits: number[] = [];
  for (let i = 0; i < c.ids.length; i++) {
    if (keep(c.logits[i])) {
      ids.push(c.ids[i]);
      logits.push(c.logits[i]);
    }
  }
  return { ids: Int32Array.from(ids), logits: Float32Array.from(logits), sorted: c.sorted };
}

/**
 * Nucleus: the shortest best-first prefix whose probability (softmax over the
 * current candidates) reaches p. When the candidates are not sorted (top-k
 * off), only tokens above a probability threshold are sorted: those form a
 * best-first prefix, so once their mass reaches p the nucleus lies inside.
 */
function topP(c: Candidates, p: number): Candidates {
  const max = maxOf(c.logits);
  let sum = 0;
  for (let i = 0; i < c.logits.length; i++) sum += Math.exp(c.logits[i] - max);
  let pool = c;
  if (!c.sorted) {
    for (let threshold = 1e-3;; threshold /= 16) {
      const cut = max + Math.log(threshold * sum);
      let mass = 0;
      for (let i = 0; i < c.logits.length; i++) {
        if (c.logits[i] >= cut) mass += Math.exp(c.logits[i] - max);
      }
      if (mass / sum >= p || threshold < 1e-30) {
        pool = sortCandidates(filter(c, (v) => v >= cut));
        break;
      }
    }
  }
  let cum = 0;
  let keep = pool.ids.length;
  for (let i = 0; i < pool.ids.length; i++) {
    cum += Math.exp(pool.logits[i] - max) / sum;
    if (cum >= p) {
      keep = i + 1;
      break;
    }
  }
  return { ids: pool.ids.subarray(0, keep), logits: pool.logits.subarray(0, keep), sorted: true };
}

/** Keeps tokens with p ≥ minP × p_max, i.e. logit ≥ max + ln(minP). */
function minP(c: Candidates, min: number): Candidates {
  const cut = maxOf(c.logits) + Math.log(min);
  return filter(c, (v) => v >= cut);
}

/** Softmax at the given temperature, then one draw from it. */
function draw(c: Candidates, temperature: number, rng: Rng): number {
  const n = c.ids.length;
  if (n === 1) return c.ids[0];
  const max = maxOf(c.logits);
  const weights = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    weights[i] = Math.exp((c.logits[i] - max) / temperature);
    sum += weights[i];
  }
  let u = rng.nextFloat() * sum;
  for (let i = 0; i < n; i++) {
    u -= weights[i];
    if (u < 0) return c.ids[i];
  }
  // Rounding left a sliver past the end: take the last token with weight.
  for (let i = n - 1; i >= 0; i--) if (weights[i] > 0) return c.ids[i];
  return c.ids[0];
}

function maxOf(values: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max;
}

function logSumExp(values: Float32Array): number {
  const max = maxOf(values);
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}

/** Defaults for what is left out, then the checks; an empty bias counts as none. */
function resolve(options: SamplerOptions, vocabSize?: number): ResolvedSamplerOptions {
  const { logitBias, ...numbers } = options;
  const opts: ResolvedSamplerOptions = {
    ...DEFAULT_SAMPLER_OPTIONS,
    ...withoutUndefined(numbers),
  };
  validate(opts);
  if (logitBias !== undefined && Object.keys(logitBias).length > 0) {
    opts.logitBias = checkedBias(logitBias, vocabSize);
  }
  return opts;
}

function checkedBias(
  bias: Readonly<Record<string, number>>,
  vocabSize: number | undefined,
): Readonly<Record<string, number>> {
  if (typeof bias !== "object" || bias === null || Array.isArray(bias)) {
    throw new RangeError("sampler option logitBias must be an object of token ids to numbers");
  }
  for (const [key, value] of Object.entries(bias)) {
    const id = Number(key);
    if (!/^(0|[1-9][0-9]*)$/.test(key) || !Number.isSafeInteger(id)) {
      throw new RangeError(`logit_bias key ${JSON.stringify(key)} is not a token id`);
    }
    if (vocabSize !== undefined && id >= vocabSize) {
      throw new RangeError(
        `logit_bias token ${id} is outside the vocabulary (${vocabSize} tokens)`,
      );
    }
    if (typeof value !== "number" || !(value >= -MAX_LOGIT_BIAS && value <= MAX_LOGIT_BIAS)) {
      throw new RangeError(
        `logit_bias for token ${id} must be a number from -${MAX_LOGIT_BIAS} to ` +
          `${MAX_LOGIT_BIAS}, got ${JSON.stringify(value)}`,
      );
    }
  }
  return bias;
}

function withoutUndefined(options: SamplerOptions): Partial<SamplerOptions> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

function validate(o: ResolvedSamplerOptions): void {
  const bad = (name: string, v: unknown, rule: string) => {
    throw new RangeError(`sampler option ${name} ${rule}, got ${v}`);
  };
  for (const [name, v] of Object.entries(o)) {
    if (typeof v !== "number" || Number.isNaN(v)) bad(name, v, "must be a number");
  }
  if (!Number.isInteger(o.topK) || o.topK < 0) bad("topK", o.topK, "must be an integer ≥ 0");
  if (!(o.topP > 0 && o.topP <= 1)) bad("topP", o.topP, "must be in (0, 1]");
  if (!(o.minP >= 0 && o.minP <= 1)) bad("minP", o.minP, "must be in [0, 1]");
  if (!(o.repeatPenalty > 0)) bad("repeatPenalty", o.repeatPenalty, "must be > 0");
  if (!Number.isInteger(o.repeatLastN) || o.repeatLastN < -1) {
    bad("repeatLastN", o.repeatLastN, "must be an integer ≥ -1");
  }
  if (!Number.isInteger(o.topLogprobs) || o.topLogprobs < 0) {
    bad("topLogprobs", o.topLogprobs, "must be an integer ≥ 0");
  }
}
