/**
 * The relay as users run it, for tests and the load bench: `main.ts relay` in its own process,
 * in a temp data folder, with an owner key and members added through `main.ts members add
 * --data DIR`. One relay per test file is shared by its tests (`sharedRelay`).
 *
 * The process can never outlive the test: it runs under a small bash lifeline that kills it
 * when its stdin closes, which happens on stop() and, whatever else goes wrong, when the test
 * process exits (the kernel closes the pipe).
 */
import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import {
  KIND,
  nip98Header,
  type NostrEvent,
  parseRelayInformation,
  peerIdFromNostrSecret,
  type RelayInformation,
} from "../protocol/mod.ts";
import { connectTestClient, type TestClient } from "./support/relay-test-client.ts";
import { REPO_ROOT, runGrove, type RunResult } from "./helpers.ts";
import { eventually } from "./support/poll.ts";

export interface Key {
  sk: Uint8Array;
  pk: string;
}

export function newKey(): Key {
  const sk = generateSecretKey();
  return { sk, pk: getPublicKey(sk) };
}

export interface RelayHarness {
  /** ws://127.0.0.1:PORT/ as printed by the relay. */
  url: string;
  /** http://127.0.0.1:PORT, no trailing slash (NIP-86 URL). */
  httpUrl: string;
  /** The relay's pubkey, from NIP-11. */
  pubkey: string;
  info: RelayInformation & { mesh: NonNullable<RelayInformation["mesh"]> };
  dataDir: string;
  owner: Key;
  members: Key[];
  /** `main.ts members add|remove PK --data DIR` against the running relay. */
  membersCli(action: "add" | "remove", pk: string): Promise<RunResult>;
  /** Whether the relay process is still running. */
  alive(): boolean;
  /** The relay process's pid (the Deno process, not its lifeline), for /proc readings. */
  pid(): number;
  /** What the process printed so far. */
  output(): { stdout: string; stderr: string };
  /** Stops the relay (SIGTERM, then SIGKILL) and removes its data folder. Idempotent. */
  stop(): Promise<{ code: number; stdout: string; stderr: string }>;
}

// Ends the relay when stdin closes; exits with the relay's own status when it ends first.
const LIFELINE = `"$@" & p=$!
(
  cat >/dev/null
  kill -TERM $p 2>/dev/null || exit 0
  for i in $(seq 50); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL $p 2>/dev/null
) </dev/stdin >/dev/null 2>&1 &
wait $p`;

const START_TIMEOUT_MS = 20_000;

export interface HarnessOptions {
  members?: number;
  prefix?: string;
  /** More flags for `main.ts relay`, e.g. ["--limit", "headerTimeoutSeconds=2"]. */
  args?: string[];
  /** Called with the data folder before the relay starts (to put files there). */
  prepare?: (dataDir: string) => Promise<void>;
}

export async function startRelayHarness(opts: HarnessOptions = {}): Promise<RelayHarness> {
  const dataDir = await Deno.makeTempDir({ prefix: opts.prefix ?? "grove-relay-harness-" });
  await opts.prepare?.(dataDir);
  const owner = newKey();
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      LIFELINE,
      "lifeline",
      Deno.execPath(),
      "run",
      "-A",
      `${REPO_ROOT}main.ts`,
      "relay",
      ...["--port", "0", "--mesh-port", "0", "--no-quic", "--data", dataDir],
      ...["--owner", owner.pk, "--log-format", "json"],
      ...(opts.args ?? []),
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lifeline = child.stdin.getWriter();
  let stdout = "";
  let stderr = "";
  let exited: { code: number } | undefined;
  const pump = async (
    stream: ReadableStream<Uint8Array<ArrayBuffer>>,
    add: (s: string) => void,
  ) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
  };
  const done = Promise.all([
    child.status,
    pump(child.stdout, (s) => stdout += s),
    pump(child.stderr, (s) => stderr += s),
  ]).then(([status]) => {
    exited = { code: status.code };
    return { code: status.code, stdout, stderr };
  });
  const backstop = () => {
    try {
      child.kill("SIGKILL"); // the lifeline then sees stdin close and kills the relay
    } catch {
      // already gone
    }
  };
  // A test run that filters out the file's last test (which stops the relay) ends here.
  const onUnload = () => {
    backstop();
    try {
      Deno.removeSync(dataDir, { recursive: true });
    } catch {
      // already removed
    }
  };
  globalThis.addEventListener("unload", onUnload);

  let stopping: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      await lifeline.close().catch(() => {});
      const timer = setTimeout(backstop, 10_000);
      const out = await done;
      clearTimeout(timer);
      globalThis.removeEventListener("unload", onUnload);
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      return out;
    })();

  try {
    await eventually(() => {
      if (/^relay pubkey .*\n/m.test(stdout)) return true;
      if (exited) throw new Error(`the relay exited with ${exited.code}:\n${stdout}\n${stderr}`);
      return false;
    }, {
      timeoutMs: START_TIMEOUT_MS,
      what: () => `the relay did not start:\n${stdout}\n${stderr}`,
    });
    const url = /^relay listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m.exec(stdout)?.[1];
    assert.ok(url, `no "relay listening on" line in:\n${stdout}`);
    const httpUrl = url.replace(/^ws:/, "http:").replace(/\/$/, "");
    const res = await fetch(url.replace(/^ws:/, "http:"), {
      headers: { accept: "application/nostr+json" },
    });
    const info = parseRelayInformation(await res.json());
    assert.ok(info.mesh, "NIP-11 has no mesh object");
    const membersCli = (action: "add" | "remove", pk: string) =>
      runGrove(["members", action, pk, "--data", dataDir]);
    const members: Key[] = [];
    for (let i = 0; i < (opts.members ?? 0); i++) {
      const key = newKey();
      const r = await membersCli("add", key.pk);
      assert.equal(r.code, 0, `members add failed:\n${r.stdout}\n${r.stderr}`);
      members.push(key);
    }
    // The relay notices the file changed on its next poll; tests want the members it knows.
    if (members.length > 0) await untilListed(url, owner, members.map((m) => m.pk));
    return {
      url,
      httpUrl,
      pubkey: info.pubkey,
      info: info as RelayHarness["info"],
      dataDir,
      owner,
      members,
      membersCli,
      alive: () => exited === undefined,
      pid: () => childPid(child.pid),
      output: () => ({ stdout, stderr }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits (bounded) until the relay's NIP-43 list (kind 13534) names every pubkey. */
async function untilListed(url: string, reader: Key, pubkeys: string[]): Promise<void> {
  const client = await connectTestClient(url);
  try {
    assert.deepEqual((await client.auth(reader.sk, url)).slice(2), [true, ""]);
    await eventually(async () => {
      const [list] = await query(client, { kinds: [KIND.MEMBERSHIP_LIST], limit: 1 });
      const listed = new Set(list?.tags.filter((t) => t[0] === "member").map((t) => t[1]));
      return pubkeys.every((pk) => listed.has(pk));
    }, {
      timeoutMs: 8000,
      what: "the relay's membership list (13534) never named the members added with the CLI",
    });
  } finally {
    await client.close();
  }
}

/** The pid of the `main.ts` process the lifeline `parent` started. */
function childPid(parent: number): number {
  const children = Deno.readTextFileSync(`/proc/${parent}/task/${parent}/children`);
  for (const pid of children.trim().split(/\s+/).map(Number)) {
    try {
      if (Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("main.ts")) return pid;
    } catch {
      // gone
    }
  }
  throw new Error(`no main.ts process under the lifeline ${parent}`);
}

/** One relay for a whole test file, started by the first test that asks for it. */
export function sharedRelay(opts: HarnessOptions = {}) {
  let relay: Promise<RelayHarness> | undefined;
  return {
    get: () => relay ??= startRelayHarness(opts),
    async stop() {
      if (relay) await (await relay.catch(() => undefined))?.stop();
    },
  };
}

/**
 * Deno.test for tests on the shared relay: the process and its output pumps outlive a single
 * test, which the op and resource sanitizers would count as leaks.
 */
export function relayTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/** A WebSocket client authenticated (NIP-42) as `key`; fails the test if AUTH is refused. */
export async function connectAs(relay: RelayHarness, key?: Key): Promise<TestClient> {
  const client = await connectTestClient(relay.url);
  if (key) {
    const ok = await client.auth(key.sk, relay.url);
    assert.deepEqual(ok.slice(2), [true, ""], `AUTH refused: ${JSON.stringify(ok)}`);
  }
  return client;
}

/** Every event a REQ returns before EOSE; fails on CLOSED. */
export async function query(
  client: TestClient,
  filter: Record<string, unknown>,
  subId = `q${Math.random().toString(36).slice(2, 10)}`,
): Promise<NostrEvent[]> {
  client.send(["REQ", subId, filter]);
  const out: NostrEvent[] = [];
  for (;;) {
    const m = await client.next((m) => m[1] === subId);
    if (m[0] === "EOSE") break;
    if (m[0] === "CLOSED") throw new Error(`REQ ${subId} was CLOSED: ${m[2]}`);
    if (m[0] === "EVENT") out.push(m[2] as NostrEvent);
  }
  client.send(["CLOSE", subId]);
  return out;
}

export interface Admission {
  status: number;
  json: Record<string, unknown>;
  /** The Authorization header sent, for tests that look for it where it must not be. */
  authorization: string;
}

export interface AdmitOptions {
  peerId?: string;
  body?: string;
  /** Sent as is instead of a fresh NIP-98 header. */
  authorization?: string;
  /** What the auth event claims, when it should differ from the request. */
  sign?: { url?: string; method?: string; body?: string; createdAt?: number };
}

/** POSTs `body` (default `{"peerId"}` of `key`) to the admission URL with NIP-98 auth. */
export async function admit(
  relay: RelayHarness,
  key: Key,
  opts: AdmitOptions = {},
): Promise<Admission> {
  const url = relay.info.mesh.admission_url;
  const body = opts.body ??
    JSON.stringify({ peerId: opts.peerId ?? peerIdFromNostrSecret(key.sk) });
  const enc = new TextEncoder();
  const authorization = opts.authorization ?? authHeader(key.sk, {
    url: opts.sign?.url ?? url,
    method: opts.sign?.method ?? "POST",
    body: enc.encode(opts.sign?.body ?? body),
  }, opts.sign?.createdAt);
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization, "content-type": "application/json" },
    body,
  });
  return { status: res.status, json: await res.json(), authorization };
}

/**
 * A NIP-98 header as nodes make it (protocol's nip98Header, with its random nonce tag);
 * `createdAt` lets a test date it outside the window.
 */
export const authHeader = nip98Header;

/** One NIP-86 call with NIP-98 auth from `key`. */
export async function nip86(
  relay: Pick<RelayHarness, "httpUrl">,
  key: Key,
  method: string,
  params: unknown[] = [],
): Promise<Admission> {
  const body = JSON.stringify({ method, params });
  const authorization = authHeader(key.sk, {
    url: relay.httpUrl,
    method: "POST",
    body: new TextEncoder().encode(body),
  });
  const res = await fetch(relay.httpUrl, {
    method: "POST",
    headers: { authorization, "content-type": "application/nostr+json+rpc" },
    body,
  });
  return { status: res.status, json: await res.json(), authorization };
}

/** A kind 1 note by `key`, dated now. */
export function note(key: Key, content: string, tags: string[][] = [], kind = 1): NostrEvent {
  return finalizeEvent(
    { kind, created_at: Math.floor(Date.now() / 1000), tags, content },
    key.sk,
  );
}
