/**
 * A seeded generator of JSON Schemas for the grammar tests, over what jsonSchemaGrammar supports:
 * objects (required and optional properties, additionalProperties), arrays (items, prefixItems,
 * bounds), strings (lengths, enum, const, formats, patterns), integers and numbers with bounds,
 * booleans, null, anyOf / oneOf (branches of different types, so one value never matches two
 * oneOf branches), allOf of objects, type lists with null, and $ref to $defs (a recursive list
 * too). Kept small, so a shortest answer fits a few dozen tokens. And an Ajv 2020-12 validator
 * with the formats the grammar writes, checked strictly (a real calendar date).
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { createRng } from "../../inference/mod.ts";

type Schema = Record<string, unknown>;

const PATTERNS = ["^[a-z]{2,4}$", "^\\d{3}-\\d{2}$", "^(yes|no|maybe)$", "^[A-Z][a-z]*$", "^x+y?$"];
const FORMATS = ["date", "time", "date-time", "uuid"];
const WORDS = ["red", "green", "blue", "ünï", "a b", 'q"t'];

export function createSchemaGenerator(seed: number) {
  const rng = createRng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.nextFloat() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  const chance = (p: number) => rng.nextFloat() < p;

  function string(): Schema {
    switch (int(0, 5)) {
      case 0: {
        const min = int(0, 3);
        return { type: "string", minLength: min, maxLength: min + int(0, 8) };
      }
      case 1:
        return { type: "string", enum: WORDS.slice(0, int(1, WORDS.length)) };
      case 2:
        return { const: pick(WORDS) };
      case 3:
        return { type: "string", format: pick(FORMATS) };
      case 4:
        return { type: "string", pattern: pick(PATTERNS) };
      default:
        return { type: "string" };
    }
  }

  function numeric(): Schema {
    const type = chance(0.5) ? "integer" : "number";
    const s: Schema = { type };
    const lo = int(-50, 50);
    if (chance(0.6)) s[chance(0.3) ? "exclusiveMinimum" : "minimum"] = lo;
    if (chance(0.6)) s[chance(0.3) ? "exclusiveMaximum" : "maximum"] = lo + int(2, 200);
    return s;
  }

  function scalar(): Schema {
    switch (int(0, 5)) {
      case 0:
      case 1:
        return string();
      case 2:
      case 3:
        return numeric();
      case 4:
        return { type: "boolean" };
      default:
        return chance(0.5) ? { type: "null" } : { enum: [1, "two", null, true, { k: [3] }] };
    }
  }

  function object(depth: number): Schema {
    const n = int(1, 3);
    const properties: Schema = {};
    const required: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = pick(["id", "name", "x", "value", "tags", "ok", "when", "ñame"]) + i;
      properties[name] = any(depth + 1);
      if (chance(0.5)) required.push(name);
    }
    const s: Schema = { type: "object", properties };
    if (required.length > 0) s.required = required;
    const extra = int(0, 9);
    if (extra < 4) s.additionalProperties = false;
    else if (extra === 4) s.additionalProperties = { type: "integer" };
    else if (extra === 5) s.additionalProperties = true;
    return s;
  }

  function array(depth: number): Schema {
    if (chance(0.25)) {
      return {
        type: "array",
        prefixItems: [scalar(), scalar()],
        items: false,
        minItems: int(0, 2),
      };
    }
    const min = int(0, 2);
    return { type: "array", items: any(depth + 1), minItems: min, maxItems: min + int(0, 3) };
  }

  /** Branches of different kinds: no value matches two of them. */
  function union(depth: number): Schema {
    const kinds: (() => Schema)[] = [
      () => string(),
      () => ({ type: "integer", minimum: int(0, 9) }),
      () => ({ type: "boolean" }),
      () => ({ type: "null" }),
      () => object(depth + 1),
      () => array(depth + 1),
    ];
    const first = int(0, kinds.length - 1);
    let second = int(0, kinds.length - 2);
    if (second >= first) second++;
    return { [chance(0.5) ? "anyOf" : "oneOf"]: [kinds[first](), kinds[second]()] };
  }

  function any(depth: number): Schema {
    if (depth >= 3) return scalar();
    switch (int(0, 9)) {
      case 0:
      case 1:
        return object(depth);
      case 2:
        return array(depth);
      case 3:
        return union(depth);
      case 4:
        return { type: [pick(["string", "integer", "boolean"]), "null"] };
      case 5:
        return {
          allOf: [
            { type: "object", properties: { a: scalar() }, required: ["a"] },
            { properties: { b: scalar() } },
          ],
        };
      default:
        return scalar();
    }
  }

  /** One schema: usually an object at the root, sometimes with $defs and a $ref. */
  function next(): Schema {
    switch (int(0, 7)) {
      case 0:
        return {
          $defs: { item: object(2) },
          type: "object",
          properties: {
            first: { $ref: "#/$defs/item" },
            rest: { type: "array", items: { $ref: "#/$defs/item" }, maxItems: 2 },
          },
          required: ["first"],
          additionalProperties: false,
        };
      case 1:
        return {
          $defs: {
            node: {
              type: "object",
              properties: {
                v: { type: "integer" },
                next: { anyOf: [{ type: "null" }, { $ref: "#/$defs/node" }] },
              },
              required: ["v"],
              additionalProperties: false,
            },
          },
          $ref: "#/$defs/node",
        };
      case 2:
        return any(0);
      default:
        return object(0);
    }
  }

  return { next, rng };
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

function isDate(s: string): boolean {
  const m = DATE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // Date.UTC would read years 0–99 as 1900–1999
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** Ajv for JSON Schema 2020-12, with date, time, date-time and uuid checked strictly. */
export function createValidator() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat("date", isDate);
  ajv.addFormat("time", (s: string) => TIME.test(s));
  ajv.addFormat("date-time", (s: string) => {
    const [d, t] = s.split("T");
    return t !== undefined && isDate(d) && TIME.test(t);
  });
  ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  return ajv;
}
