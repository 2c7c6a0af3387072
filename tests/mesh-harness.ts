/**
 * A mesh of real processes for the end-to-end tests: `main.ts relay`, `serve` and `consume`
 * as users run them, on loopback with `--port 0`, temporary `--data` folders and `--nsec` keys;
 * membership through `main.ts members add|remove --data RELAYDIR`. Every process is killed at
 * the end, whatever happened.
 */
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { MODEL_PATH, REPO_ROOT, runGrove } from "./helpers.ts";
import { eventually } from "./support/poll.ts";

export interface Key {
  nsec: string; // hex, which --nsec accepts
  pubkey: string;
}

export function newKey(): Key {
  const sk = generateSecretKey();
  const nsec = Array.from(sk, (b) => b.toString(16).padStart(2, "0")).join("");
  return { nsec, pubkey: getPublicKey(sk) };
}

export interface GroveProcess {
  child: Deno.ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits until stdout matches; throws with both outputs after `ms` or when the process ends. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  kill(signal?: Deno.Signal): void;
  exited: Promise<Deno.CommandStatus>;
}

/**
 * Starts `main.ts ARGS`. `netns`: inside that network namespace (`ip netns exec` replaces itself
 * with Deno, so signals reach the Grove process itself; tests/support/netns.ts).
 */
export function spawnGrove(
  args: string[],
  env: Record<string, string> = {},
  opts: { netns?: string } = {},
): GroveProcess {
  const deno = [Deno.execPath(), "run", "-A", `${REPO_ROOT}main.ts`, ...args];
  const [cmd, ...rest] = opts.netns ? ["ip", "netns", "exec", opts.netns, ...deno] : deno;
  const child = new Deno.Command(cmd, {
    args: rest,
    cwd: REPO_ROOT,
    env: { GROVE_MODEL_PATH: MODEL_PATH, NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const pump = async (s: ReadableStream<Uint8Array<ArrayBuffer>>, add: (t: string) => void) => {
    for await (const t of s.pipeThrough(new TextDecoderStream())) add(t);
  };
  const pumps = Promise.all([
    pump(child.stdout, (t) => out += t),
    pump(child.stderr, (t) => err += t),
  ]);
  const exited = child.status.then(async (s) => (await pumps, s));
  let done = false;
  exited.then(() => done = true);
  const outputs = () => `\n--- stdout\n${out}\n--- stderr\n${err}`;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill(signal = "SIGKILL") {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    },
    waitFor(re, ms = 20_000) {
      return eventually(() => {
        const m = re.exec(out);
        if (m) return m;
        if (done) throw new Error(`grove ${args[0]} exited${outputs()}`);
        return null;
      }, {
        timeoutMs: ms,
        intervalMs: 20,
        what: () => `grove ${args[0]} did not print ${re}${outputs()}`,
      });
    },
  };
}

export interface NodeProcess extends GroveProcess {
  /** http://127.0.0.1:PORT (no /v1). */
  url: string;
  key: Key;
}

export interface Mesh {
  /** The temporary folder the mesh lives in (removed by close()). */
  root: string;
  relayUrl: string;
  relayDir: string;
  owner: Key;
  /**
   * `extra`: more flags (default `--ctx-size 256`; `--model PATH` for another model); `env`:
   * more environment (GROVE_HOME, HF_ENDPOINT).
   */
  serve(
    name: string,
    key?: Key,
    extra?: string[],
    env?: Record<string, string>,
  ): Promise<NodeProcess>;
  /** `member` false: a stranger's node, which never shows up in the member list; `extra`: flags. */
  consume(key?: Key, member?: boolean, extra?: string[]): Promise<NodeProcess>;
  addMember(pubkey: string): Promise<void>;
  removeMember(pubkey: string): Promise<void>;
  /** Kills every process and removes the temporary folders. */
  close(): Promise<void>;
}

export async function startMesh(): Promise<Mesh> {
  const root = await Deno.makeTempDir({ prefix: "grove-mesh-" });
  const procs: GroveProcess[] = [];
  const owner = newKey();
  const relayDir = `${root}/relay`;
  let n = 0;
  const close = async () => {
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.exited));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  const node = async (
    args: string[],
    key: Key,
    member = true,
    env: Record<string, string> = {},
  ): Promise<NodeProcess> => {
    const p = spawnGrove(
      [...args, "--port", "0", "--data", `${root}/node-${n++}`, "--nsec", key.nsec],
      env,
    );
    procs.push(p);
    const m = await p.waitFor(/^grove node listening on (http:\/\/127\.0\.0\.1:\d+)\/v1$/m);
    const url = m[1];
    // Peers admit a new member once the relay's list names it (the relay polls ~every 2 s).
    if (member) await waitForStatus(url, (s) => s.inMemberList === true);
    return { ...p, url, key };
  };
  const members = async (action: string, pubkey: string) => {
    const r = await runGrove(["members", action, pubkey, "--data", relayDir]);
    if (r.code !== 0) throw new Error(`members ${action} failed: ${r.stderr}`);
  };
  try {
    const relay = spawnGrove([
      "relay",
      ...["--port", "0", "--mesh-port", "0", "--no-quic", "--data", relayDir],
      ...["--owner", owner.pubkey, "--log-format", "json"],
    ]);
    procs.push(relay);
    const relayUrl = (await relay.waitFor(/^relay listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m))[1];
    await relay.waitFor(/^rendezvous /m);
    return {
      root,
      relayUrl,
      relayDir,
      owner,
      serve: (name, key = owner, extra = ["--ctx-size", "256"], env = {}) =>
        node(["serve", "--relay", relayUrl, "--name", name, "--no-quic", ...extra], key, true, env),
      consume: (key = owner, member = true, extra: string[] = []) =>
        node(["consume", "--relay", relayUrl, "--no-quic", ...extra], key, member),
      addMember: (pubkey) => members("add", pubkey),
      removeMember: (pubkey) => members("remove", pubkey),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A serving node (the owner's, with `serveArgs`) and a client node of a second member that
 * already lists `model`: how most end-to-end tests begin.
 */
export async function servingAndClient(
  mesh: Mesh,
  opts: { name?: string; serveArgs?: string[]; consumeArgs?: string[]; model?: string } = {},
): Promise<{ serving: NodeProcess; client: NodeProcess; clientKey: Key }> {
  const clientKey = newKey();
  await mesh.addMember(clientKey.pubkey);
  const [serving, client] = await Promise.all([
    mesh.serve(opts.name ?? "node-a", mesh.owner, opts.serveArgs),
    mesh.consume(clientKey, true, opts.consumeArgs),
  ]);
  const model = opts.model ?? "stories260K";
  await waitForAvailability(client.url, (a) => a.models.some((m) => m.id === model));
  return { serving, client, clientKey };
}

/** Polls the node's /api/availability until `ok(body)` holds; throws after `ms`. */
export function waitForAvailability(
  url: string,
  ok: (a: { models: { id: string }[]; serveTargets: unknown[] }) => boolean,
  ms = 15_000,
): Promise<void> {
  return untilAnswer(`${url}/api/availability`, ok, ms);
}

export function waitForStatus(
  url: string,
  ok: (s: Record<string, unknown>) => boolean,
  ms = 10_000,
): Promise<void> {
  return untilAnswer(`${url}/api/status`, ok, ms);
}

/** Polls a JSON endpoint until it answers 200 with a body `ok` accepts (the error shows the last). */
async function untilAnswer<T>(url: string, ok: (body: T) => boolean, ms: number): Promise<void> {
  await eventually(async () => {
    // A node just started may drop the first connection (a namespace's forwarder): ask again.
    const res = await fetch(url).catch((e: Error) => e);
    if (res instanceof Error) return res;
    const text = await res.text();
    return res.ok ? JSON.parse(text) as T : new Error(`HTTP ${res.status}: ${text}`);
  }, {
    until: (body) => !(body instanceof Error) && ok(body),
    timeoutMs: ms,
    intervalMs: 100,
    what: `${url} did not answer as expected`,
  });
}

/** One counter of a node's Prometheus text, summed over its label sets. */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}
