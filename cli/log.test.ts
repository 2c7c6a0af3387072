import assert from "node:assert/strict";
import { createLogger, parseLogFormat } from "./log.ts";
import { CliError } from "./cli-error.ts";

const fixed = () => new Date("2025-01-02T03:04:05.000Z");

Deno.test("log: json lines carry time, level, message and fields", () => {
  const lines: string[] = [];
  const log = createLogger("json", (l) => lines.push(l), fixed);
  log.warn("relay listening", { port: 7777 });
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2025-01-02T03:04:05.000Z",
    level: "warn",
    msg: "relay listening",
    port: 7777,
  });
});

Deno.test("log: pretty lines are the sentence with key=value fields", () => {
  const lines: string[] = [];
  createLogger("pretty", (l) => lines.push(l), fixed).error("it broke", { why: "a b", n: 2 });
  assert.match(lines[0], /^\d\d:\d\d:\d\d error it broke why="a b" n=2$/);
});

Deno.test("log: --log-format accepts pretty and json only", () => {
  assert.equal(parseLogFormat(undefined), "pretty");
  assert.equal(parseLogFormat("json"), "json");
  assert.throws(() => parseLogFormat("xml"), CliError);
});
