/**
 * The tools and schemas every library's steps offer the model, and the checks of what comes
 * back: a call names an offered tool and its arguments validate against that tool's schema.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { FORECAST_FUNCTION } from "../support/forecast-tool.ts";
import { assertValid } from "./kit.ts";

export const PROMPT = "What will the weather be in Paris?";

interface FunctionDef {
  name: string;
  description: string;
  parameters: {
    type: "object";
    properties: Record<string, Record<string, unknown>>;
    required: string[];
    additionalProperties: false;
  };
}

export const FORECAST: FunctionDef = FORECAST_FUNCTION;

export const TIME: FunctionDef = {
  name: "get_time",
  description: "The time now in a time zone",
  parameters: {
    type: "object",
    properties: { zone: { type: "string", maxLength: 8 } },
    required: ["zone"],
    additionalProperties: false,
  },
};

/** The same forecast tool's input, as zod-first libraries declare it. */
export const forecastInput = z.object({
  city: z.string().max(12),
  days: z.number().int().min(1).max(7),
  unit: z.enum(["C", "F"]).optional(),
});

/** A structured answer: nested object, array with bounds, enum, optional field. */
export const person = z.object({
  name: z.string().max(10),
  age: z.number().int().min(0).max(120),
  pets: z.array(z.object({ kind: z.enum(["cat", "dog"]), name: z.string().max(8) })).max(2),
  nickname: z.string().max(6).optional(),
});

const schemas: Record<string, unknown> = {
  [FORECAST.name]: FORECAST.parameters,
  [TIME.name]: TIME.parameters,
};

/** A call of an offered tool whose arguments (JSON text or parsed) validate against its schema. */
export function assertCall(name: string, args: unknown, offered = Object.keys(schemas)): void {
  assert.ok(offered.includes(name), `called ${name}, offered ${offered}`);
  assertValid(schemas[name], args, `${name}'s arguments`);
}

/** A constrained answer validates both ways: zod's parse and Ajv over zod's JSON Schema. */
export function assertPerson(value: unknown, what: string): void {
  const parsed = person.safeParse(value);
  assert.ok(parsed.success, `${what}: ${JSON.stringify(value)} ${parsed.error?.message}`);
  assertValid(z.toJSONSchema(person), value, what);
}
