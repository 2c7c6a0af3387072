/**
 * JSON Schema → Grammar, in the manner of llama.cpp's json-schema-to-grammar: each schema becomes
 * the text of the values it accepts. Objects list their properties in the schema's order (each
 * optional one may be left out) and produce extra properties only when additionalProperties
 * asks for them; arrays count their items; strings count characters or follow a pattern or a
 * format (date, time, date-time, uuid); numbers and integers keep within their bounds; enum and
 * const give their values; anyOf / oneOf their branches (oneOf as anyOf: branches that overlap
 * can give a value that matches two); allOf is merged; $ref reaches $defs / definitions or any
 * local JSON pointer, recursion included. A keyword that cannot be honoured is a GrammarError
 * whose `feature` names it; keywords that do not constrain (title, description, …) and unknown
 * ones are ignored, as validators ignore them.
 */
import { buildGrammar } from "./lower.ts";
import {
  alt,
  EMPTY,
  type Expr,
  type Grammar,
  GrammarError,
  lit,
  opt,
  ref,
  rep,
  seq,
  set,
} from "./grammar.ts";
import { FORMATS, withPrimitives } from "./json-primitives.ts";
import { type Bounds, integerRange, numberRange } from "./json-numbers.ts";
import { patternContent } from "./json-pattern.ts";
import { ANNOTATIONS, mergeSchemas, type Schema, type SchemaObject } from "./json-schema-merge.ts";

/** Keywords that constrain values in ways a grammar here does not follow. */
const UNSUPPORTED = [
  "not",
  "if",
  "then",
  "else",
  "patternProperties",
  "propertyNames",
  "dependentRequired",
  "dependentSchemas",
  "dependencies",
  "unevaluatedProperties",
  "unevaluatedItems",
  "contains",
  "minContains",
  "maxContains",
  "multipleOf",
  "$dynamicRef",
  "$recursiveRef",
];
const OBJECT_KEYWORDS = [
  "properties",
  "required",
  "additionalProperties",
  "minProperties",
  "maxProperties",
];
const ARRAY_KEYWORDS = [
  "items",
  "prefixItems",
  "additionalItems",
  "minItems",
  "maxItems",
  "uniqueItems",
];
const STRING_KEYWORDS = ["minLength", "maxLength", "pattern", "format"];
const NUMBER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];

const SEP = seq(lit(","), ref("space"));
const SPACE = ref("space");

const isObject = (s: unknown): s is SchemaObject =>
  typeof s === "object" && s !== null && !Array.isArray(s);

function constraining(s: SchemaObject): string[] {
  return Object.keys(s).filter((k) => !ANNOTATIONS.has(k));
}

/** A grammar for the JSON texts `schema` accepts. */
export function jsonSchemaGrammar(schema: unknown): Grammar {
  const rules = new Map<string, Expr>([["root", EMPTY]]);
  const refRules = new Map<string, string>();
  const used = new Set(["root"]);

  function ruleName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "rule";
    let name = clean;
    for (let i = 2; used.has(name); i++) name = `${clean}-${i}`;
    used.add(name);
    return name;
  }

  function target(pointer: string): Schema {
    if (!pointer.startsWith("#")) {
      throw new GrammarError(
        `$ref ${JSON.stringify(pointer)}: only local references (#/…) are supported`,
        "$ref",
      );
    }
    const path = pointer.slice(1);
    if (path !== "" && !path.startsWith("/")) {
      throw new GrammarError(`$ref ${JSON.stringify(pointer)}: anchors are not supported`, "$ref");
    }
    let at: unknown = schema;
    for (const raw of path === "" ? [] : path.slice(1).split("/")) {
      const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
      at = isObject(at) || Array.isArray(at) ? (at as Record<string, unknown>)[key] : undefined;
      if (at === undefined) {
        throw new GrammarError(`$ref ${JSON.stringify(pointer)} points at nothing`, "$ref");
      }
    }
    return at as Schema;
  }

  /** A schema with a $ref, as the schema it points at merged with its other keywords. */
  function resolve(s: SchemaObject): Schema {
    const { $ref, ...rest } = s;
    return mergeSchemas([target($ref as string), rest], resolve);
  }

  function visitRef(pointer: string): Expr {
    let name = refRules.get(pointer);
    if (name === undefined) {
      name = ruleName(`ref-${pointer.split("/").pop() || "root"}`);
      refRules.set(pointer, name);
      rules.set(name, EMPTY); // reserved, so a recursive reference finds it
      rules.set(name, visit(target(pointer), name));
    }
    return ref(name);
  }

  /** The rule named after `hint` for `e`, so big schemas print readably and refer by name. */
  function named(hint: string, e: Expr): Expr {
    if (e.k === "ref") return e;
    const name = ruleName(hint);
    rules.set(name, e);
    return ref(name);
  }

  function visit(s: unknown, name: string): Expr {
    if (s === true) return ref("json-value");
    if (s === false) {
      throw new GrammarError(`the schema at "${name}" is false: no value matches it`, "false");
    }
    if (!isObject(s)) {
      throw new GrammarError(`the schema at "${name}" is not an object or a boolean`);
    }
    for (const k of UNSUPPORTED) {
      if (k in s) throw new GrammarError(`unsupported JSON Schema keyword: ${k}`, k);
    }
    const keys = constraining(s);
    if ("$ref" in s) {
      if (typeof s.$ref !== "string") {
        throw new GrammarError(`$ref at "${name}" is not a string`, "$ref");
      }
      return keys.length === 1 ? visitRef(s.$ref) : visit(resolve(s), name);
    }
    if ("allOf" in s) {
      const { allOf, ...rest } = s;
      if (!Array.isArray(allOf)) {
        throw new GrammarError(`allOf at "${name}" is not an array`, "allOf");
      }
      return visit(mergeSchemas([rest, ...allOf as Schema[]], resolve), name);
    }
    if ("anyOf" in s && "oneOf" in s) {
      throw new GrammarError(`anyOf and oneOf together (at "${name}") are not supported`, "oneOf");
    }
    for (const key of ["anyOf", "oneOf"] as const) {
      if (!(key in s)) continue;
      const { [key]: branches, ...rest } = s;
      if (!Array.isArray(branches) || branches.length === 0) {
        throw new GrammarError(`${key} at "${name}" must be a non-empty array`, key);
      }
      const siblings = constraining(rest).length > 0;
      return alt(
        ...branches.map((b: Schema, i: number) =>
          named(
            `${name}-${i}`,
            visit(siblings ? mergeSchemas([rest, b], resolve) : b, `${name}-${i}`),
          )
        ),
      );
    }
    if (s.nullable === true) {
      const { nullable: _, ...rest } = s;
      return alt(visit(rest, name), ref("json-null"));
    }
    if ("const" in s) return seq(lit(JSON.stringify(s.const)), SPACE);
    if ("enum" in s) return enumOf(s, name);
    const type = s.type ?? inferType(s);
    if (type === undefined) return ref("json-value");
    if (Array.isArray(type)) {
      if (type.length === 0) throw new GrammarError(`type at "${name}" is an empty list`, "type");
      return alt(...type.map((t) => typed(s, t, name)));
    }
    return typed(s, type, name);
  }

  function enumOf(s: SchemaObject, name: string): Expr {
    if (!Array.isArray(s.enum)) throw new GrammarError(`enum at "${name}" is not an array`, "enum");
    const types = s.type === undefined ? undefined : [s.type].flat() as string[];
    const values = s.enum.filter((v) => types === undefined || types.some((t) => isOfType(v, t)));
    if (values.length === 0) {
      throw new GrammarError(`enum at "${name}" has no value of its type`, "enum");
    }
    return seq(alt(...values.map((v) => lit(JSON.stringify(v)))), SPACE);
  }

  function typed(s: SchemaObject, type: unknown, name: string): Expr {
    switch (type) {
      case "string":
        return stringOf(s, name);
      case "integer":
      case "number": {
        const b = boundsOf(s);
        const bounded = b.min !== -Infinity || b.max !== Infinity;
        if (!bounded) return ref(type === "integer" ? "json-integer" : "json-number");
        return seq(type === "integer" ? integerRange(b) : numberRange(b), SPACE);
      }
      case "boolean":
        return ref("json-boolean");
      case "null":
        return ref("json-null");
      case "object":
        return named(name, objectOf(s, name));
      case "array":
        return named(name, arrayOf(s, name));
      default:
        throw new GrammarError(`unknown type ${JSON.stringify(type)} at "${name}"`, "type");
    }
  }

  function stringOf(s: SchemaObject, name: string): Expr {
    const lengths = "minLength" in s || "maxLength" in s;
    let content: Expr;
    if ("format" in s) {
      const format = FORMATS[s.format as string];
      if (format === undefined) {
        throw new GrammarError(`unsupported string format: ${s.format}`, `format: ${s.format}`);
      }
      if (lengths || "pattern" in s) {
        throw new GrammarError(
          `format with minLength, maxLength or pattern (at "${name}")`,
          "format",
        );
      }
      content = format;
    } else if ("pattern" in s) {
      if (lengths) {
        throw new GrammarError(`pattern with minLength or maxLength (at "${name}")`, "pattern");
      }
      content = patternContent(s.pattern as string);
    } else {
      const min = (s.minLength as number | undefined) ?? 0;
      const max = (s.maxLength as number | undefined) ?? Infinity;
      if (max < min) {
        throw new GrammarError(
          `maxLength ${max} is below minLength ${min} at "${name}"`,
          "maxLength",
        );
      }
      content = rep(ref("json-char"), min, max);
    }
    return seq(lit('"'), content, lit('"'), SPACE);
  }

  function objectOf(s: SchemaObject, name: string): Expr {
    const props = { ...(s.properties ?? {}) as Record<string, Schema> };
    const required = new Set((s.required ?? []) as string[]);
    for (const r of required) if (!(r in props)) props[r] = true;
    const extra = s.additionalProperties as Schema | undefined;
    const extraAllowed = extra !== undefined && extra !== false;
    const names = Object.keys(props);
    const minP = s.minProperties as number | undefined,
      maxP = s.maxProperties as number | undefined;
    if (minP !== undefined && minP > required.size) {
      throw new GrammarError(
        `minProperties above the number of required properties (at "${name}")`,
        "minProperties",
      );
    }
    if (maxP !== undefined && (extraAllowed || maxP < names.length)) {
      throw new GrammarError(
        `maxProperties below the properties it allows (at "${name}")`,
        "maxProperties",
      );
    }
    const member = (key: Expr, value: Expr) => seq(key, SPACE, lit(":"), SPACE, value);
    const kvs = names.map((p) => member(lit(JSON.stringify(p)), visit(props[p], `${name}-${p}`)));
    const extraKv = extraAllowed
      ? member(keyOtherThan(names, name), visit(extra, `${name}-additional`))
      : undefined;
    // from(i, emitted): properties i… after `emitted` (whether one came already: then a comma).
    const memo = new Map<string, Expr>();
    const from = (i: number, emitted: boolean): Expr => {
      const key = `${i},${emitted}`;
      const known = memo.get(key);
      if (known) return known;
      let e: Expr;
      if (i === names.length) {
        if (extraKv === undefined) e = EMPTY;
        else if (emitted) e = rep(seq(SEP, extraKv), 0);
        else e = opt(seq(extraKv, rep(seq(SEP, extraKv), 0)));
      } else {
        const present = seq(emitted ? SEP : EMPTY, kvs[i], from(i + 1, true));
        e = required.has(names[i]) ? present : alt(present, from(i + 1, emitted));
      }
      e = named(`${name}-from${i}${emitted ? "" : "-first"}`, e);
      memo.set(key, e);
      return e;
    };
    return seq(lit("{"), SPACE, from(0, false), lit("}"), SPACE);
  }

  /** A JSON string key that is none of `names`: raw characters only, so each text has one spelling. */
  function keyOtherThan(names: string[], name: string): Expr {
    const raw = set([[0x22, 0x22], [0x5c, 0x5c], [0, 0x1f], [0x7f, 0x7f]], true);
    interface Node {
      children: Map<number, Node>;
      terminal: boolean;
    }
    const root: Node = { children: new Map(), terminal: false };
    for (const n of names) {
      let at = root;
      for (const ch of n) {
        const cp = ch.codePointAt(0)!;
        let next = at.children.get(cp);
        if (!next) at.children.set(cp, next = { children: new Map(), terminal: false });
        at = next;
      }
      at.terminal = true;
    }
    let count = 0;
    const nodeRule = (node: Node): Expr => {
      const parts: Expr[] = [];
      if (!node.terminal) parts.push(lit('"'));
      const taken = [...node.children.keys()].map((cp) => [cp, cp] as const);
      const free = taken.length === 0 ? raw : setMinus(raw, taken);
      if (free) parts.push(seq(free, rep(raw, 0), lit('"')));
      for (const [cp, child] of node.children) {
        parts.push(seq(lit(String.fromCodePoint(cp)), nodeRule(child)));
      }
      return named(`${name}-key${count++}`, alt(...parts));
    };
    return seq(lit('"'), nodeRule(root));
  }

  function arrayOf(s: SchemaObject, name: string): Expr {
    let prefix: Schema[] = [];
    let tail: Schema | undefined;
    if (Array.isArray(s.prefixItems)) {
      prefix = s.prefixItems as Schema[];
      tail = s.items as Schema | undefined;
    } else if (Array.isArray(s.items)) {
      prefix = s.items as Schema[];
      tail = s.additionalItems as Schema | undefined;
    } else {
      if ("additionalItems" in s) {
        throw new GrammarError(`additionalItems without a tuple (at "${name}")`, "additionalItems");
      }
      tail = (s.items as Schema | undefined) ?? true;
    }
    const k = prefix.length;
    const min = (s.minItems as number | undefined) ?? 0;
    let max = (s.maxItems as number | undefined) ?? Infinity;
    // No more items than the tuple, unless the tail is a schema or minItems needs them.
    if (tail === false) max = Math.min(max, k);
    else if (tail === undefined && max === Infinity) max = Math.max(k, min);
    if (max < min) throw new GrammarError(`maxItems is below minItems (at "${name}")`, "maxItems");
    if (s.uniqueItems === true && max > 1) {
      throw new GrammarError(`unsupported JSON Schema keyword: uniqueItems`, "uniqueItems");
    }
    const items = prefix.map((p, i) => visit(p, `${name}-${i}`));
    const tailItem = max > k ? visit(tail ?? true, `${name}-item`) : undefined;
    let inner: Expr = EMPTY;
    if (tailItem !== undefined) {
      inner = k === 0
        ? (min >= 1
          ? seq(tailItem, rep(seq(SEP, tailItem), min - 1, max - 1))
          : opt(seq(tailItem, rep(seq(SEP, tailItem), 0, max - 1))))
        : rep(seq(SEP, tailItem), Math.max(0, min - k), max - k);
    }
    for (let i = k - 1; i >= 0; i--) {
      inner = seq(i === 0 ? EMPTY : SEP, items[i], inner);
      if (i >= min) inner = opt(inner);
    }
    return seq(lit("["), SPACE, inner, lit("]"), SPACE);
  }

  rules.set("root", visit(schema, "root"));
  return buildGrammar(withPrimitives(rules));
}

function setMinus(raw: Expr, taken: (readonly [number, number])[]): Expr | undefined {
  if (raw.k !== "set") return raw;
  const out: [number, number][] = [];
  for (const [lo, hi] of raw.ranges) {
    let start = lo;
    for (const [t] of [...taken].sort((a, b) => a[0] - b[0])) {
      if (t < start || t > hi) continue;
      if (t > start) out.push([start, t - 1]);
      start = t + 1;
    }
    if (start <= hi) out.push([start, hi]);
  }
  return out.length === 0 ? undefined : set(out);
}

function inferType(s: SchemaObject): string | undefined {
  if (OBJECT_KEYWORDS.some((k) => k in s)) return "object";
  if (ARRAY_KEYWORDS.some((k) => k in s)) return "array";
  if (STRING_KEYWORDS.some((k) => k in s)) return "string";
  if (NUMBER_KEYWORDS.some((k) => k in s)) return "number";
  return undefined;
}

function isOfType(v: unknown, t: string): boolean {
  switch (t) {
    case "null":
      return v === null;
    case "boolean":
      return typeof v === "boolean";
    case "integer":
      return Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "string":
      return typeof v === "string";
    case "array":
      return Array.isArray(v);
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    default:
      return false;
  }
}

function boundsOf(s: SchemaObject): Bounds {
  const b: Bounds = { min: -Infinity, max: Infinity, minExclusive: false, maxExclusive: false };
  if (typeof s.minimum === "number") b.min = s.minimum;
  if (typeof s.maximum === "number") b.max = s.maximum;
  // Draft 4 spells exclusive bounds as booleans beside minimum / maximum.
  if (s.exclusiveMinimum === true) b.minExclusive = true;
  if (s.exclusiveMaximum === true) b.maxExclusive = true;
  if (typeof s.exclusiveMinimum === "number" && s.exclusiveMinimum >= b.min) {
    b.min = s.exclusiveMinimum;
    b.minExclusive = true;
  }
  if (typeof s.exclusiveMaximum === "number" && s.exclusiveMaximum <= b.max) {
    b.max = s.exclusiveMaximum;
    b.maxExclusive = true;
  }
  return b;
}
