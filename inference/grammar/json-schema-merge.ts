/**
 * `allOf` by merging: the branches become one schema that means the same (types and enums
 * intersected, properties merged by name, required joined, the tighter of each bound). What a
 * branch's additionalProperties says about the other's extra properties is applied to them
 * (false drops them, a schema is merged into each). Keywords that cannot be merged that way
 * are refused with a GrammarError naming allOf and the keyword.
 */
import { GrammarError } from "./grammar.ts";

export type SchemaObject = Record<string, unknown>;
export type Schema = SchemaObject | boolean;

const LOWER_BOUNDS = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
const UPPER_BOUNDS = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];
/** Keywords that say nothing about which values match: kept as they are, never enforced. */
export const ANNOTATIONS: ReadonlySet<string> = new Set([
  "title",
  "description",
  "$comment",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$schema",
  "$id",
  "$defs",
  "definitions",
]);

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}

const cannot = (key: string, why = "the branches disagree"): never => {
  throw new GrammarError(`allOf: cannot merge "${key}" (${why})`, "allOf");
};

function typesOf(t: unknown): string[] {
  return Array.isArray(t) ? t as string[] : [t as string];
}

/**
 * Merges schemas as allOf does; `resolve` replaces a schema holding a $ref by what it points at
 * (merged with its siblings).
 */
export function mergeSchemas(
  schemas: readonly Schema[],
  resolve: (s: SchemaObject) => Schema,
): Schema {
  return schemas.reduce<Schema>((a, b) => mergeTwo(a, b, resolve), true);
}

function mergeTwo(a: Schema, b: Schema, resolve: (s: SchemaObject) => Schema): Schema {
  if (a === true) return b;
  if (b === true) return a;
  if (a === false || b === false) return false;
  if (deepEqual(a, b)) return a;
  if ("$ref" in a) return mergeTwo(resolve(a), b, resolve);
  if ("$ref" in b) return mergeTwo(a, resolve(b), resolve);
  if ("allOf" in a || "allOf" in b) {
    const flat = (s: SchemaObject): Schema[] => {
      const { allOf, ...rest } = s;
      return [rest, ...(allOf as Schema[] ?? [])];
    };
    return mergeSchemas([...flat(a), ...flat(b)], resolve);
  }
  const out: SchemaObject = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[key], y = b[key];
    if (!(key in a)) out[key] = y;
    else if (!(key in b)) out[key] = x;
    else if (deepEqual(x, y) || ANNOTATIONS.has(key)) out[key] = x;
    else if (LOWER_BOUNDS.includes(key)) out[key] = Math.max(x as number, y as number);
    else if (UPPER_BOUNDS.includes(key)) out[key] = Math.min(x as number, y as number);
    else if (key === "type") {
      const both = typesOf(x).filter((t) =>
        typesOf(y).includes(t) || (t === "integer" && typesOf(y).includes("number"))
      );
      for (const t of typesOf(y)) {
        if (t === "integer" && typesOf(x).includes("number") && !both.includes(t)) both.push(t);
      }
      if (both.length === 0) cannot("type", "no type is in every branch");
      out.type = both.length === 1 ? both[0] : both;
    } else if (key === "enum") {
      out.enum = (x as unknown[]).filter((v) => (y as unknown[]).some((w) => deepEqual(v, w)));
      if ((out.enum as unknown[]).length === 0) cannot("enum", "no value is in every branch");
    } else if (key === "required") {
      out.required = [...new Set([...(x as string[]), ...(y as string[])])];
    } else if (key !== "properties" && key !== "additionalProperties") cannot(key);
  }
  mergeObjectParts(a, b, out, resolve);
  return out;
}

function mergeObjectParts(
  a: SchemaObject,
  b: SchemaObject,
  out: SchemaObject,
  resolve: (s: SchemaObject) => Schema,
) {
  if (
    !("properties" in a || "properties" in b || "additionalProperties" in a ||
      "additionalProperties" in b)
  ) return;
  const pa = (a.properties ?? {}) as Record<string, Schema>;
  const pb = (b.properties ?? {}) as Record<string, Schema>;
  const apA = a.additionalProperties as Schema | undefined;
  const apB = b.additionalProperties as Schema | undefined;
  const required = new Set((out.required ?? []) as string[]);
  const props: Record<string, Schema> = {};
  // A property only one branch names meets the other's additionalProperties.
  const place = (name: string, s: Schema, otherAp: Schema | undefined) => {
    if (otherAp === false) {
      if (required.has(name)) cannot("additionalProperties", `"${name}" is required but excluded`);
      return;
    }
    props[name] = typeof otherAp === "object" ? mergeTwo(s, otherAp, resolve) : s;
  };
  for (const [name, s] of Object.entries(pa)) {
    if (name in pb) props[name] = mergeTwo(s, pb[name], resolve);
    else place(name, s, apB);
  }
  for (const [name, s] of Object.entries(pb)) if (!(name in pa)) place(name, s, apA);
  out.properties = props;
  if (apA === false || apB === false) out.additionalProperties = false;
  else if (typeof apA === "object" && typeof apB === "object") {
    out.additionalProperties = mergeTwo(apA, apB, resolve);
  } else if (typeof apA === "object" || typeof apB === "object") {
    out.additionalProperties = typeof apA === "object" ? apA : apB;
  } else if (apA === true || apB === true) out.additionalProperties = true;
  else delete out.additionalProperties;
}
