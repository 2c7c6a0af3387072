/**
 * A request's constraint (mesh/service.ts `Constraint`) compiled to the grammar the scheduler
 * enforces. A grammar the engine cannot build (an unsupported JSON Schema keyword, a GBNF
 * syntax error) is the request's fault: invalid_request, naming what failed. Agents repeat the
 * same schema request after request, so the last few compiled grammars are kept.
 */
import {
  type Grammar,
  GrammarError,
  jsonObjectGrammar,
  jsonSchemaGrammar,
  parseGbnf,
} from "../inference/mod.ts";
import { type Constraint, ServiceError } from "./service.ts";

const CACHED = 32;
const cache = new Map<string, Grammar>();

export function compileConstraint(c: Constraint): Grammar {
  const key = JSON.stringify(c.type === "json_schema" ? [c.type, c.schema] : c);
  const hit = cache.get(key);
  if (hit) {
    // Most recently used last: the first key is the one to drop.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const grammar = compile(c);
  cache.set(key, grammar);
  if (cache.size > CACHED) cache.delete(cache.keys().next().value!);
  return grammar;
}

function compile(c: Constraint): Grammar {
  try {
    switch (c.type) {
      case "json_object":
        return jsonObjectGrammar();
      case "json_schema":
        return jsonSchemaGrammar(c.schema);
      case "gbnf":
        return parseGbnf(c.grammar);
    }
  } catch (err) {
    if (!(err instanceof GrammarError)) throw err;
    const what = c.type === "gbnf"
      ? "The GBNF grammar cannot be used"
      : "The JSON Schema cannot be enforced";
    throw new ServiceError("invalid_request", `${what}: ${err.message}`);
  }
  throw new ServiceError("invalid_request", `unknown constraint type ${JSON.stringify(c)}`);
}
