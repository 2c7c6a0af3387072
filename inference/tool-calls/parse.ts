/**
 * The parser for a plan's format (parse-*.ts), reading the calls back from the model's output as
 * it streams; only the plan's callable names count as calls.
 */
import { genericParser } from "./parse-generic.ts";
import { harmonyParser } from "./parse-harmony.ts";
import { hermesParser } from "./parse-hermes.ts";
import { llama3Parser } from "./parse-llama3.ts";
import { mistralParser } from "./parse-mistral.ts";
import type { ToolCallParser } from "./parse-common.ts";
import type { ToolCallPlan } from "./types.ts";

export type { ParseStep, ToolCallParser } from "./parse-common.ts";

export function createToolCallParser(
  plan: Pick<ToolCallPlan, "format" | "names" | "prefill">,
): ToolCallParser {
  const names = new Set(plan.names);
  const prefilled = plan.prefill !== "";
  switch (plan.format) {
    case "hermes":
      return hermesParser(names, prefilled);
    case "mistral":
      return mistralParser(names, prefilled);
    case "llama3":
      return llama3Parser(names);
    case "harmony":
      return harmonyParser(names, plan.prefill);
    case "generic":
      return genericParser(names);
  }
}
