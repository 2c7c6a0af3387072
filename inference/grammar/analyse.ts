/**
 * What the matcher needs to know about a grammar before it runs: the fewest bytes each rule can
 * match (the budget close walks toward those), and that the grammar can be matched by stacks at
 * all: a left-recursive rule (one that can reach itself without consuming a byte) would expand
 * forever, and a root that matches no finite string could never end.
 */
import { type Grammar, GrammarError } from "./grammar.ts";

/** Fewest bytes each rule matches (Infinity: none finite), by relaxation to a fixed point. */
export function ruleMinBytes(g: Grammar): Float64Array {
  const min = new Float64Array(g.rules.length).fill(Infinity);
  const pass = (r: number): boolean => {
    let best = min[r];
    for (const seq of g.rules[r]) {
      let sum = 0;
      for (const e of seq) sum += "bytes" in e ? 1 : min[e.ref];
      if (sum < best) best = sum;
    }
    if (best === min[r]) return false;
    min[r] = best;
    return true;
  };
  // Helpers refer both up and down the numbering: sweep both ways until nothing moves.
  for (let changed = true, forward = true; changed; forward = !forward) {
    changed = false;
    const n = g.rules.length;
    for (let i = 0; i < n; i++) changed = pass(forward ? i : n - 1 - i) || changed;
  }
  return min;
}

/** Throws GrammarError when the grammar is left-recursive or its root has no finite match. */
export function checkGrammar(g: Grammar): void {
  const min = ruleMinBytes(g);
  if (min[g.root] === Infinity) {
    throw new GrammarError(`rule "${g.names[g.root]}" matches no finite text`);
  }
  // Rules each rule can expand into before consuming a byte.
  const leftRefs = g.rules.map((alts) => {
    const out = new Set<number>();
    for (const seq of alts) {
      for (const e of seq) {
        if ("bytes" in e) break;
        out.add(e.ref);
        if (min[e.ref] !== 0) break;
      }
    }
    return out;
  });
  const WHITE = 0, GREY = 1, BLACK = 2;
  const color = new Uint8Array(g.rules.length);
  for (let start = 0; start < g.rules.length; start++) {
    if (color[start] !== WHITE) continue;
    const stack: [number, Iterator<number>][] = [[start, leftRefs[start].values()]];
    color[start] = GREY;
    while (stack.length > 0) {
      const [r, it] = stack.at(-1)!;
      const next = it.next();
      if (next.done) {
        color[r] = BLACK;
        stack.pop();
        continue;
      }
      const s = next.value;
      if (color[s] === GREY) {
        throw new GrammarError(
          `rule "${g.names[s]}" is left-recursive (it can reach itself without matching a ` +
            `character)`,
          "left recursion",
        );
      }
      if (color[s] === WHITE) {
        color[s] = GREY;
        stack.push([s, leftRefs[s].values()]);
      }
    }
  }
}
