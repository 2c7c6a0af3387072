/**
 * Every token's bytes (what the stream decoder gives for it) in one trie, built once per
 * tokenizer and kept while the tokenizer lives. Nodes are numbered in depth-first order and
 * stored flat: a node's children are a contiguous run of (byte, node), its tokens a run of ids
 * (several tokens can share bytes: a byte-fallback `<0x41>` and `A`). Tokens with no bytes
 * (control tokens) are not in it; end-of-generation tokens are listed apart.
 */
import type { Tokenizer } from "../tokenizer/mod.ts";

export type TrieTokenizer = Pick<Tokenizer, "vocabSize" | "tokenBytes" | "isEndOfGeneration">;

export interface TokenTrie {
  vocabSize: number;
  nodeCount: number;
  childStart: Int32Array; // per node: its first child in childByte/childNode
  childEnd: Int32Array;
  childByte: Uint8Array;
  childNode: Int32Array;
  tokenStart: Int32Array; // per node: the tokens whose bytes end here, in tokenIds
  tokenEnd: Int32Array;
  tokenIds: Int32Array;
  endOfGeneration: Int32Array;
  /** singleByte[b]: some token is exactly the byte b. */
  singleByte: Uint8Array;
  bytesOf(id: number): Uint8Array;
}

interface BuildNode {
  children: Map<number, BuildNode>;
  tokens: number[];
}

export function buildTokenTrie(tokenizer: TrieTokenizer): TokenTrie {
  const n = tokenizer.vocabSize;
  const root: BuildNode = { children: new Map(), tokens: [] };
  const bytes: Uint8Array[] = [];
  const eog: number[] = [];
  const singleByte = new Uint8Array(256);
  let nodeCount = 1;
  for (let id = 0; id < n; id++) {
    const b = tokenizer.tokenBytes(id);
    bytes.push(b);
    if (tokenizer.isEndOfGeneration(id)) {
      eog.push(id); // ends the text whatever its bytes: never a character of it
      continue;
    }
    if (b.length === 0) continue;
    if (b.length === 1) singleByte[b[0]] = 1;
    let at = root;
    for (const x of b) {
      let child = at.children.get(x);
      if (child === undefined) {
        child = { children: new Map(), tokens: [] };
        at.children.set(x, child);
        nodeCount++;
      }
      at = child;
    }
    at.tokens.push(id);
  }
  const childStart = new Int32Array(nodeCount), childEnd = new Int32Array(nodeCount);
  const childByte = new Uint8Array(nodeCount), childNode = new Int32Array(nodeCount);
  const tokenStart = new Int32Array(nodeCount), tokenEnd = new Int32Array(nodeCount);
  const tokenIds = new Int32Array(n);
  let nextNode = 0, nextChild = 0, nextToken = 0;
  // Depth-first numbering; each node's children are laid out together when it is numbered.
  const todo: [BuildNode, number][] = [[root, nextNode++]];
  while (todo.length > 0) {
    const [node, id] = todo.pop()!;
    tokenStart[id] = nextToken;
    for (const t of node.tokens) tokenIds[nextToken++] = t;
    tokenEnd[id] = nextToken;
    const kids = [...node.children].sort((a, b) => a[0] - b[0]);
    childStart[id] = nextChild;
    const numbered: [BuildNode, number][] = [];
    for (const [b, kid] of kids) {
      const kidId = nextNode++;
      childByte[nextChild] = b;
      childNode[nextChild++] = kidId;
      numbered.push([kid, kidId]);
    }
    childEnd[id] = nextChild;
    for (let i = numbered.length - 1; i >= 0; i--) todo.push(numbered[i]);
  }
  return {
    vocabSize: n,
    nodeCount,
    childStart,
    childEnd,
    childByte,
    childNode,
    tokenStart,
    tokenEnd,
    tokenIds: tokenIds.subarray(0, nextToken),
    endOfGeneration: Int32Array.from(eog),
    singleByte,
    bytesOf: (id) => bytes[id],
  };
}

const tries = new WeakMap<object, TokenTrie>();

/** The tokenizer's trie, built on first use. */
export function tokenTrieOf(tokenizer: TrieTokenizer): TokenTrie {
  let trie = tries.get(tokenizer);
  if (trie === undefined) {
    trie = buildTokenTrie(tokenizer);
    tries.set(tokenizer, trie);
  }
  return trie;
}
