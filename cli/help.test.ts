import assert from "node:assert/strict";
import { main } from "../main.ts";

/** main() with console.log and console.error captured. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await main(args), out: out.join("\n"), err: err.join("\n") };
  } finally {
    Object.assign(console, { log, error });
  }
}

// Each command's example and one of its defaults, as a user reads them.
const EXPECTED: Record<string, { example: string; default: string }> = {
  relay: {
    example: "  npx deno task relay --owner npub1... --data ~/.grove/relay",
    default: "--port VALUE        port of the relay's WebSocket and HTTP (default 7777;",
  },
  serve: {
    example: "  npx deno task serve --model stories260K --relay ws://127.0.0.1:7777",
    default: "(default stories260K)",
  },
  consume: {
    example: "  npx deno task consume --relay ws://127.0.0.1:7777 --port 9337",
    default: "the relay's URL (default ws://127.0.0.1:7777)",
  },
  demo: {
    example: "  npx deno task demo",
    default: "the demo relay's port (default: a free one)",
  },
  members: {
    example: "  npx deno task members add npub1... --data ~/.grove/relay",
    default: "member (default) or admin",
  },
  generate: {
    example: '  npx deno task generate --model stories260K --prompt "Once upon a time" -n 60',
    default: "how many tokens to generate (default 128)",
  },
  tokenize: {
    example: '  echo "Hello world" | npx deno task tokenize --model stories260K',
    default: "(required)",
  },
};

Deno.test("help: every command's --help gives its flags, a default and an example, exit 0", async () => {
  for (const [command, want] of Object.entries(EXPECTED)) {
    for (const flag of ["--help", "-h"]) {
      const r = await run([command, flag]);
      assert.equal(r.code, 0, `${command} ${flag}: ${r.err}`);
      assert.match(r.out, new RegExp(`^usage: grove ${command} \\[flags\\]\n`), command);
      assert.ok(r.out.includes("\nflags:\n  --"), `${command}: no flags section`);
      assert.ok(r.out.split("\n").includes(want.example), `${command}: example\n${r.out}`);
      assert.ok(r.out.includes(want.default), `${command}: ${want.default}\n${r.out}`);
    }
  }
  // `grove help serve` is `grove serve --help`.
  assert.deepEqual(await run(["help", "serve"]), await run(["serve", "--help"]));
});

Deno.test("help: bare grove --help lists every command with an example, exit 0; no command exits 2", async () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = await run(args);
    assert.equal(r.code, 0, args.join(" "));
    assert.match(r.out, /^usage: grove <command> \[flags\]/);
    for (const command of Object.keys(EXPECTED)) {
      assert.match(r.out, new RegExp(`^  ${command} +\\S`, "m"), command);
    }
    assert.ok(r.out.includes("example:\n  npx deno task demo"), r.out);
  }
  assert.equal((await run([])).code, 2);
  const unknown = await run(["srve"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command "srve"/);
});

Deno.test("help: a mistyped flag names the closest one on every command, exit 2", async () => {
  const typos: [string[], string][] = [
    [["relay", "--ownr", "x"], "owner"],
    [["serve", "--modle", "x"], "model"],
    [["consume", "--rlay", "ws://x"], "relay"],
    [["demo", "--relay-prot", "1"], "relay-port"],
    [["members", "list", "--dta", "/x"], "data"],
    [["generate", "--tmep", "0"], "temp"],
    [["tokenize", "--mdoel", "x"], "model"],
  ];
  for (const [args, near] of typos) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(
      r.err,
      new RegExp(
        `^grove ${args[0]}: unknown option ${args.find((a) => a.startsWith("--"))}: ` +
          `did you mean --${near}\\? \\(--help lists the flags\\)`,
      ),
      args.join(" "),
    );
  }
});
