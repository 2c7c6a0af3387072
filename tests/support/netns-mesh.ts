/**
 * A Grove mesh on the simulated network (netns.ts): the relay on a public host, nodes on any
 * host, each process in its host's namespace with its mesh listening on the host's address
 * (`--mesh-host`), its API reached from the test through `net.http`. The relay keeps fixed
 * ports and its data folder, so a test can SIGKILL it and start it again as an operator would.
 */
import { runGrove } from "../helpers.ts";
import { type GroveProcess, type Key, newKey, waitForStatus } from "../mesh-harness.ts";
import { createNet, type Net, type NetHost } from "./netns.ts";

export const RELAY_PORT = 7777;
export const RELAY_MESH_PORT = 7778;

export interface NetNode extends GroveProcess {
  /** http://127.0.0.1:PORT in the test's namespace (no /v1). */
  url: string;
  key: Key;
  host: NetHost;
}

export interface NetMesh {
  net: Net;
  root: string;
  owner: Key;
  relayHost: NetHost;
  /** ws://RELAY_IP:7777/ as nodes dial it. */
  relayUrl: string;
  /** The relay's HTTP (NIP-11, /metrics) from the test's namespace. */
  relayHttp: string;
  relayDir: string;
  /** The running relay process (replaced by startRelay). */
  relay(): GroveProcess;
  /** Starts the relay (again) on the same host, ports and data; resolves once it listens. */
  startRelay(): Promise<GroveProcess>;
  serve(
    host: NetHost,
    name: string,
    opts?: { key?: Key; extra?: string[]; env?: Record<string, string> },
  ): Promise<NetNode>;
  consume(host: NetHost, opts?: { key?: Key; extra?: string[] }): Promise<NetNode>;
  addMember(pubkey: string): Promise<void>;
  /** Stops every process and removes the network and the folders. */
  close(): Promise<void>;
}

/**
 * Builds the network with `net` (or a new one) and a relay on a public host named `relay`.
 * `close()` destroys the network too.
 */
export async function startNetMesh(net?: Net): Promise<NetMesh> {
  net ??= await createNet();
  const root = await Deno.makeTempDir({ prefix: "grove-netmesh-" });
  const owner = newKey();
  const relayDir = `${root}/relay`;
  let n = 0;
  let relay: GroveProcess | undefined;
  const close = async () => {
    await net.destroy();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  try {
    const relayHost = await net.publicHost("relay");
    const relayUrl = `ws://${relayHost.ip}:${RELAY_PORT}/`;
    const startRelay = async () => {
      relay = net.spawn(relayHost, [
        "relay",
        ...["--host", relayHost.ip, "--port", `${RELAY_PORT}`, "--mesh-port", `${RELAY_MESH_PORT}`],
        ...["--no-quic", "--data", relayDir, "--owner", owner.pubkey, "--log-format", "json"],
      ]);
      await relay.waitFor(/^rendezvous /m);
      return relay;
    };
    await startRelay();
    const relayHttp = await net.http(relayHost, RELAY_PORT, relayHost.ip);
    const node = async (
      host: NetHost,
      args: string[],
      key: Key,
      env: Record<string, string> = {},
    ): Promise<NetNode> => {
      const p = net.spawn(host, [
        ...args,
        ...["--relay", relayUrl, "--no-quic", "--mesh-host", host.ip, "--port", "0"],
        ...["--data", `${root}/node-${n++}`, "--nsec", key.nsec],
      ], env);
      const m = await p.waitFor(
        /^grove node listening on http:\/\/127\.0\.0\.1:(\d+)\/v1$/m,
        30_000,
      );
      const url = await net.http(host, Number(m[1]));
      await waitForStatus(url, (s) => s.inMemberList === true, 20_000);
      return { ...p, url, key, host };
    };
    return {
      net,
      root,
      owner,
      relayHost,
      relayUrl,
      relayHttp,
      relayDir,
      relay: () => relay!,
      startRelay,
      serve: (host, name, opts = {}) =>
        node(
          host,
          ["serve", "--name", name, ...(opts.extra ?? ["--ctx-size", "256"])],
          opts.key ?? owner,
          opts.env,
        ),
      consume: (host, opts = {}) =>
        node(host, ["consume", ...(opts.extra ?? [])], opts.key ?? owner),
      async addMember(pubkey) {
        const r = await runGrove(["members", "add", pubkey, "--data", relayDir]);
        if (r.code !== 0) throw new Error(`members add failed: ${r.stderr}`);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
