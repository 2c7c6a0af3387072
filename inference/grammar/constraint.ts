/**
 * A grammar over tokens: one generation's place in the grammar, which masks the logits before
 * each pick and follows the picked token. The mask walks the tokenizer's trie from the current
 * state, so a subtree whose first bytes the grammar refuses is skipped whole.
 *
 * The budget close: each state knows the fewest bytes that complete the text; a token is kept
 * only while what follows it still fits in the tokens left, so the answer always closes (open
 * strings, arrays and objects, with the grammar's minimums) however small `max_tokens` is. With
 * a vocabulary that has a token for every single byte, n bytes take at most n tokens; one without
 * counts the tokens of the shortest completion spelled greedily from the trie instead.
 */
import { type Grammar, GrammarError } from "./grammar.ts";
import { DEAD, type Matcher, matcherOf } from "./matcher.ts";
import { type TokenTrie, tokenTrieOf, type TrieTokenizer } from "./token-trie.ts";

export interface ConstraintState {
  /**
   * Sets disallowed tokens' logits to -Infinity. `left`: tokens the answer may still take (this
   * one included); when it is just enough to close, only tokens on a shortest way to a complete
   * answer stay allowed. End-of-generation tokens stay allowed only where the answer may end.
   */
  mask(logits: Float32Array, left: number): void;
  /** Follows the picked token; throws GrammarError when it breaks the grammar. */
  accept(id: number): void;
  /** The output so far is a complete answer (end of generation allowed). */
  canEnd(): boolean;
  /** Complete, and nothing may follow: stop now. */
  mustEnd(): boolean;
  /** The budget cut tokens the grammar allowed, to close in time (finish_reason "length"). */
  closedEarly(): boolean;
}

/** UTF-8 never uses these bytes, so a vocabulary needs no token for them. */
const unusedByte = (b: number) => b === 0xc0 || b === 0xc1 || b >= 0xf5;

/** Every byte UTF-8 uses is a token of its own: n bytes always fit in n tokens. */
function spellsEveryByte(trie: TokenTrie): boolean {
  for (let b = 0; b < 256; b++) if (!trie.singleByte[b] && !unusedByte(b)) return false;
  return true;
}

export function createConstraint(grammar: Grammar, tokenizer: TrieTokenizer): ConstraintState {
  const matcher = matcherOf(grammar);
  const trie = tokenTrieOf(tokenizer);
  const closeCost = spellsEveryByte(trie)
    ? (s: number) => matcher.minBytes(s)
    : greedyCloseCost(matcher, trie);
  const keep = new Uint8Array(trie.vocabSize);
  let state = matcher.start;
  let forced = false;
  // The walk's stack of (trie node, state).
  let walkNodes = new Int32Array(256), walkStates = new Int32Array(256);

  function mask(logits: Float32Array, left: number) {
    const after = left - 1; // tokens that may follow this one
    keep.fill(0);
    let kept = 0, cut = false;
    let fallbackCost = Infinity;
    const overBudget: number[] = [];
    let depth = 0;
    walkNodes[0] = 0;
    walkStates[0] = state;
    depth = 1;
    while (depth > 0) {
      depth--;
      const node = walkNodes[depth], from = walkStates[depth];
      const end = trie.childEnd[node];
      for (let c = trie.childStart[node]; c < end; c++) {
        const to = matcher.next(from, trie.childByte[c]);
        if (to === DEAD) continue;
        const child = trie.childNode[c];
        const t0 = trie.tokenStart[child], t1 = trie.tokenEnd[child];
        if (t0 < t1) {
          const cost = closeCost(to);
          for (let t = t0; t < t1; t++) {
            const id = trie.tokenIds[t];
            if (cost <= after) {
              keep[id] = 1;
              kept++;
            } else {
              if (cost !== Infinity && logits[id] > -Infinity) cut = true;
              if (cost < fallbackCost) {
                fallbackCost = cost;
                overBudget.length = 0;
              }
              if (cost === fallbackCost) overBudget.push(id);
            }
          }
        }
        if (trie.childStart[child] === trie.childEnd[child]) continue;
        if (depth === walkNodes.length) {
          walkNodes = grow(walkNodes);
          walkStates = grow(walkStates);
        }
        walkNodes[depth] = child;
        walkStates[depth++] = to;
      }
    }
    if (matcher.accepting(state)) {
      for (const id of trie.endOfGeneration) keep[id] = 1, kept++;
    }
    if (kept === 0) {
      // The grammar's minimum does not fit in what is left: keep its shortest continuations.
      if (overBudget.length === 0) {
        throw new GrammarError("no token of the vocabulary continues the grammar here");
      }
      for (const id of overBudget) keep[id] = 1;
    }
    if (cut) forced = true;
    const n = Math.min(logits.length, keep.length);
    for (let i = 0; i < n; i++) if (keep[i] === 0) logits[i] = -Infinity;
    for (let i = n; i < logits.length; i++) logits[i] = -Infinity;
  }

  function accept(id: number) {
    if (trie.endOfGeneration.includes(id)) {
      if (!matcher.accepting(state)) {
        throw new GrammarError(`end of generation (token ${id}) before the answer is complete`);
      }
      return;
    }
    const bytes = trie.bytesOf(id);
    if (bytes === undefined || bytes.length === 0) {
      throw new GrammarError(`token ${id} has no text, so the grammar cannot take it`);
    }
    let s = state;
    for (const b of bytes) {
      s = matcher.next(s, b);
      if (s === DEAD) {
        const text = new TextDecoder().decode(bytes);
        throw new GrammarError(`token ${id} (${JSON.stringify(text)}) breaks the grammar`);
      }
    }
    state = s;
  }

  return {
    mask,
    accept,
    canEnd: () => matcher.accepting(state),
    mustEnd: () => matcher.final(state),
    closedEarly: () => forced,
  };
}

function grow(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/**
 * For a vocabulary without a token for some byte: the tokens of a state's shortest completion,
 * spelled greedily (longest token first) from the trie; Infinity when the trie cannot spell it.
 */
function greedyCloseCost(matcher: Matcher, trie: TokenTrie): (s: number) => number {
  const memo = new Map<number, number>();
  return (s) => {
    const known = memo.get(s);
    if (known !== undefined) return known;
    const bytes: number[] = [];
    for (let at = s, b = matcher.shortestByte(at); b >= 0; b = matcher.shortestByte(at)) {
      bytes.push(b);
      at = matcher.next(at, b);
    }
    if (matcher.minBytes(s) === Infinity) return Infinity;
    let tokens = 0;
    for (let i = 0; i < bytes.length;) {
      let node = 0, longest = 0;
      for (let j = i; j < bytes.length; j++) {
        let next = -1;
        for (let c = trie.childStart[node]; c < trie.childEnd[node]; c++) {
          if (trie.childByte[c] === bytes[j]) next = trie.childNode[c];
        }
        if (next < 0) break;
        node = next;
        if (trie.tokenStart[node] < trie.tokenEnd[node]) longest = j - i + 1;
      }
      if (longest === 0) {
        tokens = Infinity;
        break;
      }
      tokens++;
      i += longest;
    }
    memo.set(s, tokens);
    return tokens;
  };
}
