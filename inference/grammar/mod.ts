/** Constrained sampling: grammars (GBNF, JSON Schema) and the token-level matcher. */
export { type Element, type Grammar, GrammarError } from "./grammar.ts";
export { parseGbnf } from "./gbnf.ts";
export { jsonSchemaGrammar } from "./json-schema.ts";
export { jsonObjectGrammar } from "./json-primitives.ts";
export { type ConstraintState, createConstraint } from "./constraint.ts";
export { tokenTrieOf } from "./token-trie.ts";
export { acceptsText } from "./matcher.ts";
