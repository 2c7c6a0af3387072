/**
 * A node stops within 2 s of being asked in every state, stops with the launcher that started it,
 * and a log reader that stops reading never stalls it (issue 9, process handling). Every case is
 * a real process tree as users start it: `npx deno task serve`, `deno task serve`, `main.ts`.
 */
import assert from "node:assert/strict";
import { findLaunchers, processInfo, STOP_DEADLINE_MS } from "../cli/lifecycle.ts";
import { type Mesh, startMesh } from "./mesh-harness.ts";
import { MODEL_PATH, REPO_ROOT } from "./helpers.ts";
import { eventually } from "./support/poll.ts";

/** What the issue asks: stopped within 2 s; the slack covers a loaded CI machine. */
const STOP_BOUND_MS = 2000 + 750;

/** Pids whose command line holds `marker` (a node's unique --data folder). */
function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const info = processInfo(Number(e.name));
    if (info?.cmdline.includes(marker) && info.cmdline.some((a) => a.endsWith("main.ts"))) {
      out.push(info.pid);
    }
  }
  return out;
}

/** Milliseconds until `pid` has exited (a zombie waiting for its reaper counts); throws past `ms`. */
async function timeToExit(pid: number, ms: number): Promise<number> {
  const started = performance.now();
  await eventually(() => {
    const info = processInfo(pid);
    return info === undefined || info.state === "Z";
  }, { timeoutMs: ms, what: `process ${pid} did not exit` });
  return performance.now() - started;
}

interface Launched {
  child: Deno.ChildProcess;
  nodePid: number;
  url: string;
}

/** `serve` started the way users start it, through `deno task` (and `npx` in front of it). */
async function launchServe(mesh: Mesh, via: "npx" | "deno task"): Promise<Launched> {
  const data = `${mesh.root}/task-node-${crypto.randomUUID()}`;
  const args = [
    "serve",
    ...["--relay", mesh.relayUrl, "--port", "0", "--data", data, "--nsec", mesh.owner.nsec],
    ...["--no-quic", "--ctx-size", "256"],
  ];
  const [cmd, pre] = via === "npx"
    ? ["npx", ["--no-install", "deno", "task"]]
    : [`${REPO_ROOT}node_modules/.bin/deno`, ["task"]];
  const child = new Deno.Command(cmd, {
    args: [...pre, ...args],
    cwd: REPO_ROOT,
    env: { GROVE_MODEL_PATH: MODEL_PATH, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: Deno.env.get("GROVE_TEST_DEBUG") ? "inherit" : "null",
  }).spawn();
  let out = "";
  void (async () => {
    for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) out += t;
  })().catch(() => {});
  const url = await eventually(
    () => /grove node listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out)?.[1],
    { timeoutMs: 30_000, what: () => `the node printed no listening line:\n${out}` },
  );
  const [nodePid] = pidsWith(data);
  assert.ok(nodePid, "the node process is found by its --data folder");
  return { child, nodePid, url };
}

function killTree(l: Launched) {
  for (const pid of [l.nodePid, l.child.pid]) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

Deno.test("lifecycle: a node launched with `npx deno task serve` stops when npx is stopped", async () => {
  const mesh = await startMesh();
  let launched: Launched | undefined;
  try {
    launched = await launchServe(mesh, "npx");
    const launchers = findLaunchers(processInfo(launched.nodePid)!.ppid);
    assert.ok(launchers.length >= 2, "deno task and npm exec are both watched");
    // What a supervisor does: SIGTERM to the process it started. npm passes nothing on.
    Deno.kill(launched.child.pid, "SIGTERM");
    const ms = await timeToExit(launched.nodePid, 10_000);
    console.log(`node gone ${ms.toFixed(0)} ms after npx got SIGTERM`);
    assert.ok(ms < STOP_BOUND_MS, `took ${ms} ms`);
  } finally {
    if (launched) killTree(launched);
    await launched?.child.status;
    await mesh.close();
  }
});

Deno.test("lifecycle: a node whose `deno task` is SIGKILLed mid-stream ends the stream and exits", async () => {
  const mesh = await startMesh();
  let launched: Launched | undefined;
  try {
    launched = await launchServe(mesh, "deno task");
    const res = await fetch(`${launched.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 200, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read(); // the stream is running
    Deno.kill(launched.child.pid, "SIGKILL"); // the task cannot pass anything on
    const ms = await timeToExit(launched.nodePid, 10_000);
    console.log(`node gone ${ms.toFixed(0)} ms after its deno task was killed`);
    assert.ok(ms < STOP_BOUND_MS, `took ${ms} ms`);
    // The client hears the end (done or a reset) at once; it is not left waiting.
    const ended = (async () => {
      for (;;) {
        const step = await reader.read().catch(() => ({ done: true }));
        if (step.done) return true;
      }
    })();
    const timeout = new Promise<false>((r) => setTimeout(() => r(false), 5000));
    assert.equal(await Promise.race([ended, timeout]), true, "the stream ended");
  } finally {
    if (launched) killTree(launched);
    await launched?.child.status;
    await mesh.close();
  }
});

Deno.test("lifecycle: a serving node whose relay is gone stops within 2 s of SIGTERM", async () => {
  const mesh = await startMesh();
  try {
    const node = await mesh.serve("orphan");
    const [relayPid] = pidsWith(mesh.relayDir);
    Deno.kill(relayPid, "SIGKILL");
    await timeToExit(relayPid, 5000);
    const started = performance.now();
    node.kill("SIGTERM");
    const status = await node.exited;
    const ms = performance.now() - started;
    console.log(`node stopped ${ms.toFixed(0)} ms after SIGTERM with its relay gone`);
    assert.ok(ms < STOP_BOUND_MS, `took ${ms} ms`);
    assert.equal(status.code, 0, node.stderr());
  } finally {
    await mesh.close();
  }
});

Deno.test("lifecycle: a relay with open subscriptions stops within 2 s of SIGTERM", async () => {
  const mesh = await startMesh();
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      const ws = new WebSocket(mesh.relayUrl);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      ws.send(JSON.stringify(["REQ", `sub-${i}`, { kinds: [1] }]));
      sockets.push(ws);
    }
    const [relayPid] = pidsWith(mesh.relayDir);
    Deno.kill(relayPid, "SIGTERM");
    const ms = await timeToExit(relayPid, 10_000);
    console.log(`relay gone ${ms.toFixed(0)} ms after SIGTERM with ${sockets.length} sockets open`);
    assert.ok(ms < STOP_BOUND_MS, `took ${ms} ms`);
  } finally {
    for (const ws of sockets) ws.close();
    await mesh.close();
  }
});

Deno.test("lifecycle: the stop deadline is below the 2 s the issue allows", () => {
  assert.ok(STOP_DEADLINE_MS + 200 <= 2000);
});

Deno.test("lifecycle: a log reader that stops reading never stalls the process", async () => {
  // stderr is a pipe this test never reads: it fills after 64 KiB, then every write would block.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}tests/support/log-flood.ts`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A stalled child never prints: give up after 10 s rather than hang with it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), 10_000));
  const read = await Promise.race([child.stdout.getReader().read(), stalled]);
  clearTimeout(timer);
  if (read === undefined) child.kill("SIGKILL");
  await child.stderr.cancel();
  await child.status;
  assert.ok(read?.value, "the flooding process stalled and printed nothing within 10 s");
  const { ticks } = JSON.parse(new TextDecoder().decode(read.value));
  // About 100 ticks in the second; a blocked loop manages a handful (5 measured with console.error).
  assert.ok(ticks > 40, `the event loop turned ${ticks} times in 1 s while logging 10 MB`);
});
