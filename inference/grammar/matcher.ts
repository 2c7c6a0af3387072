/**
 * The byte-level matcher: llama.cpp's stacks of grammar positions, advanced one byte at a time,
 * made a lazy DFA. A stack is a list of positions (the top: the byte element to match next;
 * below it, where each enclosing rule resumes); stacks are hash-consed, so a set of them (a
 * state) is a sorted list of ids, interned too, and the step from a state on a byte is computed
 * once and kept in the state's table of 256. Walking the token trie from a state is then mostly
 * table look-ups; and a state knows the fewest bytes that complete the text from it.
 *
 * A Matcher belongs to its grammar (shared by every constraint made from it, matcherOf); it
 * starts afresh once it holds too many states, so a long-lived grammar cannot grow without end.
 */
import { ruleMinBytes } from "./analyse.ts";
import type { Grammar } from "./grammar.ts";

export const DEAD = -1;
const UNKNOWN = -2;
/** A matcher past this many states is replaced by a fresh one for later constraints. */
const MAX_STATES = 200_000;

const KIND_BYTES = 0, KIND_REF = 1, KIND_END = 2;

/** The grammar flattened: per position its element; each alternative ends with an END. */
interface Program {
  kind: Uint8Array;
  arg: Int32Array; // class index (bytes) or rule id (ref)
  classes: Uint8Array; // class c accepts byte b when classes[c * 256 + b]
  altStarts: number[][]; // per rule, the first position of each alternative
  restMin: Float64Array; // fewest bytes from this position to the end of its alternative
}

function flatten(g: Grammar): Program {
  const kind: number[] = [], arg: number[] = [];
  const classKeys = new Map<string, number>();
  const classes: number[] = [];
  const altStarts = g.rules.map((alts) =>
    alts.map((seq) => {
      const start = kind.length;
      for (const e of seq) {
        if ("ref" in e) {
          kind.push(KIND_REF);
          arg.push(e.ref);
          continue;
        }
        const key = e.bytes.join(",");
        let c = classKeys.get(key);
        if (c === undefined) {
          c = classKeys.size;
          classKeys.set(key, c);
          const row = new Array<number>(256).fill(0);
          for (let i = 0; i < e.bytes.length; i += 2) {
            for (let b = e.bytes[i]; b <= e.bytes[i + 1]; b++) row[b] = 1;
          }
          classes.push(...row);
        }
        kind.push(KIND_BYTES);
        arg.push(c);
      }
      kind.push(KIND_END);
      arg.push(0);
      return start;
    })
  );
  const ruleMin = ruleMinBytes(g);
  const restMin = new Float64Array(kind.length);
  for (let p = kind.length - 1; p >= 0; p--) {
    restMin[p] = kind[p] === KIND_END
      ? 0
      : (kind[p] === KIND_BYTES ? 1 : ruleMin[arg[p]]) + restMin[p + 1];
  }
  return {
    kind: Uint8Array.from(kind),
    arg: Int32Array.from(arg),
    classes: Uint8Array.from(classes),
    altStarts,
    restMin,
  };
}

export interface Matcher {
  readonly start: number;
  /** The state after `byte` from `state`, or DEAD. */
  next(state: number, byte: number): number;
  /** The text so far is complete. */
  accepting(state: number): boolean;
  /** Complete, and no byte may follow. */
  final(state: number): boolean;
  /** Fewest bytes that complete the text from `state` (Infinity when none do). */
  minBytes(state: number): number;
  /** The byte that starts a shortest completion from `state` (-1 when it is complete). */
  shortestByte(state: number): number;
  readonly stateCount: number;
}

const EMPTY_STACK = 0;

export function createMatcher(g: Grammar): Matcher {
  const p = flatten(g);
  // Stack nodes: (position, the node below). Node 0 is the empty stack.
  let nodePos = new Int32Array(1024), nodeNext = new Int32Array(1024);
  let nodeCost = new Float64Array(1024);
  let nodeCount = 1;
  nodePos[0] = -1;
  const nodeIds = new Map<number, number>();

  function node(pos: number, next: number): number {
    const key = pos * 0x4000000 + next;
    const known = nodeIds.get(key);
    if (known !== undefined) return known;
    if (nodeCount === nodePos.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      nodePos = grow(nodePos);
      nodeNext = grow(nodeNext);
      nodeCost = grow(nodeCost);
    }
    const id = nodeCount++;
    nodePos[id] = pos;
    nodeNext[id] = next;
    nodeCost[id] = p.restMin[pos] + nodeCost[next];
    nodeIds.set(key, id);
    return id;
  }

  /**
   * Every stack reached from resuming at `pos` over `below`, with a byte element on top.
   * `seen`: resumptions already expanded in this step (nullable rules reach some many ways).
   */
  function expand(pos: number, below: number, out: Set<number>, seen: Set<number>) {
    const key = pos * 0x4000000 + below;
    if (seen.has(key)) return;
    seen.add(key);
    const k = p.kind[pos];
    if (k === KIND_BYTES) {
      out.add(node(pos, below));
    } else if (k === KIND_END) {
      if (below === EMPTY_STACK) out.add(EMPTY_STACK);
      else expand(nodePos[below], nodeNext[below], out, seen);
    } else {
      // Resume after the reference; a reference that ends its alternative needs no frame.
      const after = p.kind[pos + 1] === KIND_END ? below : node(pos + 1, below);
      for (const start of p.altStarts[p.arg[pos]]) expand(start, after, out, seen);
    }
  }

  const stateStacks: Int32Array[] = [];
  const stateTable: (Int32Array | undefined)[] = [];
  const stateMin: number[] = [];
  const stateIds = new Map<string, number>();

  function state(stacks: Set<number>): number {
    if (stacks.size === 0) return DEAD;
    const sorted = Int32Array.from(stacks).sort();
    const key = sorted.join(",");
    const known = stateIds.get(key);
    if (known !== undefined) return known;
    const id = stateStacks.length;
    stateStacks.push(sorted);
    stateTable.push(undefined);
    let min = Infinity;
    for (const s of sorted) min = Math.min(min, nodeCost[s]);
    stateMin.push(min);
    stateIds.set(key, id);
    return id;
  }

  function step(from: number, byte: number): number {
    const out = new Set<number>(), seen = new Set<number>();
    for (const s of stateStacks[from]) {
      if (s === EMPTY_STACK) continue;
      const pos = nodePos[s];
      if (p.classes[p.arg[pos] * 256 + byte]) expand(pos + 1, nodeNext[s], out, seen);
    }
    return state(out);
  }

  const initial = new Set<number>(), seen = new Set<number>();
  for (const start of p.altStarts[g.root]) expand(start, EMPTY_STACK, initial, seen);
  const start = state(initial);

  function next(from: number, byte: number): number {
    let table = stateTable[from];
    if (table === undefined) table = stateTable[from] = new Int32Array(256).fill(UNKNOWN);
    let to = table[byte];
    if (to === UNKNOWN) to = table[byte] = step(from, byte);
    return to;
  }

  return {
    start,
    next,
    accepting: (s) => stateStacks[s][0] === EMPTY_STACK,
    final: (s) => stateStacks[s].length === 1 && stateStacks[s][0] === EMPTY_STACK,
    minBytes: (s) => stateMin[s],
    shortestByte(s) {
      const min = stateMin[s];
      if (min === 0 || min === Infinity) return -1;
      for (let b = 0; b < 256; b++) {
        const t = next(s, b);
        if (t !== DEAD && stateMin[t] === min - 1) return b;
      }
      return -1;
    },
    get stateCount() {
      return stateStacks.length;
    },
  };
}

const matchers = new WeakMap<Grammar, Matcher>();

/** The grammar's shared matcher; a fresh one once it has grown past MAX_STATES. */
export function matcherOf(g: Grammar): Matcher {
  let m = matchers.get(g);
  if (m === undefined || m.stateCount > MAX_STATES) {
    m = createMatcher(g);
    matchers.set(g, m);
  }
  return m;
}

/** Whether `text` (its UTF-8 bytes) is a complete match of the grammar. */
export function acceptsText(g: Grammar, text: string): boolean {
  const m = matcherOf(g);
  let s = m.start;
  for (const b of new TextEncoder().encode(text)) {
    s = m.next(s, b);
    if (s === DEAD) return false;
  }
  return m.accepting(s);
}
