// The relay as users run it: `main.ts relay` in its own process. What it acknowledged with
// OK true must survive the process being killed (SIGKILL: no clean shutdown) and restarted.
import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import type { NostrEvent } from "../protocol/mod.ts";
import { connectTestClient } from "./support/relay-test-client.ts";
import { REPO_ROOT } from "./helpers.ts";
import { eventually } from "./support/poll.ts";

const ownerSk = generateSecretKey();
const OWNER = getPublicKey(ownerSk);

interface RelayProcess {
  url: string;
  pubkey: string;
  child: Deno.ChildProcess;
  /** Everything the process printed, once it has exited. */
  output: Promise<{ code: number; stdout: string; stderr: string }>;
}

async function startRelayProcess(dataDir: string): Promise<RelayProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${REPO_ROOT}main.ts`,
      "relay",
      "--port",
      "0",
      "--mesh-port",
      "0",
      "--no-quic",
      "--data",
      dataDir,
      "--owner",
      OWNER,
      "--log-format",
      "json",
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  const stdoutDone = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
  })();
  const stderrText = new Response(child.stderr).text();
  const output = (async () => {
    const [status, stderr] = await Promise.all([child.status, stderrText, stdoutDone]);
    return { code: status.code, stdout, stderr };
  })();
  let exited = false;
  child.status.then(() => exited = true);
  const started = await eventually(
    () => /relay pubkey .*\n/.test(stdout) ? "started" : exited ? "exited" : undefined,
    { timeoutMs: 15_000, intervalMs: 20, what: "the relay did not start" },
  ).catch(() => "timed out" as const);
  if (started !== "started") {
    if (started === "timed out") child.kill("SIGKILL");
    const out = await output;
    const why = started === "exited" ? `exited with ${out.code}` : "did not start in 15 s";
    throw new Error(`the relay ${why}:\n${out.stdout}\n${out.stderr}`);
  }
  const url = /^relay listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m.exec(stdout)?.[1];
  const pubkey = /^relay pubkey npub1\w+ \(([0-9a-f]{64})\)$/m.exec(stdout)?.[1];
  assert.ok(url && pubkey, `unexpected startup output:\n${stdout}`);
  return { url, pubkey, child, output };
}

Deno.test("relay process: a SIGKILL and restart lose nothing acknowledged OK true", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "grove-relay-process-" });
  let first: RelayProcess | undefined;
  let second: RelayProcess | undefined;
  try {
    first = await startRelayProcess(dataDir);
    const client = await connectTestClient(first.url);
    assert.deepEqual((await client.auth(ownerSk, first.url)).slice(2), [true, ""]);
    const t = Math.floor(Date.now() / 1000);
    const acked: NostrEvent[] = [];
    for (let i = 0; i < 20; i++) {
      const ev = finalizeEvent({ kind: 1, created_at: t, tags: [], content: `note ${i}` }, ownerSk);
      assert.deepEqual(await client.publish(ev), ["OK", ev.id, true, ""]);
      acked.push(ev);
    }
    const profile = finalizeEvent({ kind: 0, created_at: t, tags: [], content: "{}" }, ownerSk);
    assert.deepEqual(await client.publish(profile), ["OK", profile.id, true, ""]);
    acked.push(profile);
    // The trust matrix's process-level basics: a stranger may neither read nor forge 30621.
    const stranger = await connectTestClient(first.url);
    stranger.send(["REQ", "mesh", { kinds: [30621] }]);
    assert.match((await stranger.next((m) => m[0] === "CLOSED"))[2] as string, /^auth-required:/);
    await stranger.close();

    first.child.kill("SIGKILL"); // no shutdown path: only what was committed survives
    await first.output;
    await client.closed;

    second = await startRelayProcess(dataDir);
    assert.equal(second.pubkey, first.pubkey, "the relay key survives a restart");
    const info = await (await fetch(second.url.replace("ws:", "http:"), {
      headers: { accept: "application/nostr+json" },
    })).json();
    assert.equal(info.pubkey, second.pubkey);
    assert.match(info.mesh.rendezvous[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/16Uiu2/);
    const reader = await connectTestClient(second.url);
    reader.send(["REQ", "all", { ids: acked.map((e) => e.id) }]);
    const got = new Set<string>();
    for (let m = await reader.next(); m[0] !== "EOSE"; m = await reader.next()) {
      if (m[0] === "EVENT") got.add((m[2] as NostrEvent).id);
    }
    assert.deepEqual([...got].sort(), acked.map((e) => e.id).sort());
    await reader.close();

    second.child.kill("SIGTERM");
    const out = await second.output;
    assert.equal(out.code, 0, `a clean stop exits 0:\n${out.stderr}`);
    assert.match(out.stderr, /"msg":"relay stopped"/);
  } finally {
    for (const p of [first, second]) {
      if (p === undefined) continue;
      try {
        p.child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await p.output;
    }
    await Deno.remove(dataDir, { recursive: true });
  }
});
