import assert from "node:assert/strict";
import { runGrove } from "./helpers.ts";

const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

Deno.test("generate: greedy stories260K tells the known story", async () => {
  const r = await runGrove([
    "generate",
    "--model",
    "stories260K",
    "--prompt",
    "",
    "-n",
    "60",
    "--temp",
    "0",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.trimStart().startsWith(STORY), `got: ${r.stdout}`);
  assert.match(r.stderr, /backend: cpu/);
  assert.match(r.stderr, /prompt 1 tokens, generated 60/);
  assert.match(r.stderr, /decode [0-9.]+ tok\/s/);
});

Deno.test("generate: the same seed gives the same text, another seed another", async () => {
  const args = [
    "generate",
    "--model",
    "stories260K",
    "--prompt",
    "Once",
    "-n",
    "30",
    "--temp",
    "1",
  ];
  const a = await runGrove([...args, "--seed", "7"]);
  const b = await runGrove([...args, "--seed", "7"]);
  const c = await runGrove([...args, "--seed", "8"]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.notEqual(a.stdout, c.stdout);
});

Deno.test("tokenize: prints ids on one line, BOS first", async () => {
  const r = await runGrove(["tokenize", "--model", "stories260K"], { stdin: "Once upon a time" });
  assert.equal(r.code, 0, r.stderr);
  const ids = r.stdout.trim().split(" ").map(Number);
  assert.equal(ids[0], 1);
  assert.ok(ids.length > 2 && ids.every((n) => Number.isInteger(n) && n >= 0 && n < 512));
});

Deno.test("cli: bad flags and missing models are clear errors", async () => {
  const bad = await runGrove(["generate", "--model", "stories260K", "-n", "lots"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /-n "lots" is not a valid value/);
  const missing = await runGrove(["generate", "--model", "./nowhere/none.gguf"]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nowhere\/none\.gguf/);
  const noModel = await runGrove(["generate"]);
  assert.equal(noModel.code, 2);
  assert.match(noModel.stderr, /--model is required/);
  const unknown = await runGrove(["fly"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "fly"/);
});

Deno.test("cli: serve --gpu loads the model on WebGPU, then fails closed on an unreachable relay", async () => {
  const serve = await runGrove(["serve", "--gpu", "--relay", "ws://127.0.0.1:1", "--port", "0"]);
  assert.notEqual(serve.code, 0);
  assert.match(serve.stderr + serve.stdout, /runs on webgpu/);
  assert.match(serve.stderr, /127\.0\.0\.1:1/);
});

Deno.test("generate --gpu: the WebGPU engine tells the same greedy story", async () => {
  const r = await runGrove([
    "generate",
    "--gpu",
    "--model",
    "stories260K",
    "--prompt",
    "",
    "-n",
    "60",
    "--temp",
    "0",
  ], { env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.trimStart().startsWith(STORY), `got: ${r.stdout}`);
  assert.match(r.stderr, /backend: webgpu \(llvmpipe/);
  assert.match(r.stderr, /prompt 1 tokens, generated 60/);
});

Deno.test("cli: serve, consume and demo bound beyond loopback without --api-key refuse to start", async () => {
  const data = await Deno.makeTempDir({ prefix: "grove-open-host-" });
  try {
    const runs = await Promise.all(
      (["serve", "consume", "demo"] as const).map((command) =>
        runGrove([command, "--host", "0.0.0.0", "--port", "0", "--data", data])
      ),
    );
    for (const [i, what] of ["the serving node's endpoint", "the endpoint", "the demo"].entries()) {
      assert.equal(runs[i].code, 2, runs[i].stderr);
      assert.match(runs[i].stderr, new RegExp(`--host 0\\.0\\.0\\.0 opens ${what} beyond this`));
      assert.match(runs[i].stderr, /give --api-key KEY/);
      assert.doesNotMatch(runs[i].stdout, /listening/);
    }
    // Nothing was started or written: the refusal comes before the model, the key and the relay.
    assert.deepEqual([...Deno.readDirSync(data)], []);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("cli: every command answers --help with each of its flags described", async () => {
  const expected: Record<string, string[]> = {
    relay: ["--owner VALUE", "--trust-proxy", "--limit VALUE", "--mesh-port VALUE"],
    serve: ["--model VALUE", "--gpu", "--allow-origin VALUE", "--max-memory VALUE"],
    consume: ["--relay VALUE", "--api-key VALUE", "--allow-host VALUE"],
    demo: ["--relay-port VALUE", "--model VALUE"],
    members: ["--role VALUE", "--data VALUE", "--relay VALUE"],
    generate: ["--prompt VALUE, -p", "--temp VALUE", "--gpu"],
    tokenize: ["--model VALUE, -m"],
  };
  for (const [command, flags] of Object.entries(expected)) {
    const r = await runGrove([command, "--help"]);
    assert.equal(r.code, 0, `${command} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: grove ${command} \\[flags\\]`));
    for (const flag of flags) assert.ok(r.stdout.includes(`  ${flag} `), `${command}: ${flag}`);
    // Every flag line has a description after the flag column.
    for (const line of r.stdout.split("\n").filter((l) => l.startsWith("  --"))) {
      assert.match(line, /^ {2}--\S+.*\S {2,}\S/, `${command}: ${line}`);
    }
  }
});
