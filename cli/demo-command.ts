/**
 * `grove demo`: the whole mesh in one process (docs/architecture.md): a relay whose owner is the
 * demo's own key, a serving node on the embedded default model and a client node, each what
 * `relay`, `serve` and `consume` run. The client node (the demo's own key, so a member) is the
 * endpoint users point their tools at. The serving node has a key of its own (a peer cannot dial
 * itself), kept in the demo folder and added as a member before the relay starts.
 */
import { join } from "node:path";
import { createMemberStore, openRelayDatabase, startRelay } from "../relay/mod.ts";
import { loadIdentity } from "../mesh/mod.ts";
import { numberFlag, parseFlags } from "./flags.ts";
import { CliError } from "./cli-error.ts";
import {
  exitNow,
  NODE_FLAGS,
  nodeOptions,
  requireApiKeyBeyondLoopback,
  untilSignal,
} from "./node-flags.ts";
import { startServeNode } from "./serve-command.ts";
import { startClientNode } from "./consume-command.ts";

const FLAGS = {
  ...NODE_FLAGS,
  model: { type: "string" },
  gpu: { type: "boolean" },
  "relay-port": { type: "string" },
} as const;

export async function demoCommand(args: string[]): Promise<number> {
  const f = parseFlags(args, FLAGS);
  if (f.relay !== undefined) throw new CliError("--relay: the demo runs its own relay");
  const base = nodeOptions(f);
  requireApiKeyBeyondLoopback(base, "the demo");
  const { log } = base;
  const demoDir = join(base.dataDir, "demo");
  const own = await loadIdentity({ nsec: base.nsec, dataDir: base.dataDir, log });
  const serveKey = await loadIdentity({ dataDir: join(demoDir, "serve"), log });

  const relayDir = join(demoDir, "relay");
  await Deno.mkdir(relayDir, { recursive: true });
  const db = openRelayDatabase(relayDir);
  try {
    createMemberStore(db).add(serveKey.pubkey, "member", Date.now() / 1000);
  } finally {
    db.close();
  }
  const relay = await startRelay({
    host: "127.0.0.1",
    port: numberFlag("relay-port", f["relay-port"], 0, (n) => Number.isInteger(n) && n >= 0),
    meshPort: 0,
    owner: own.pubkey,
    open: false,
    quic: base.quic,
    dataDir: relayDir,
    name: "grove demo relay",
    log,
  });
  console.log(`relay listening on ${relay.localUrl}`);

  const stops: (() => Promise<void>)[] = [() => relay.stop()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      await stop().catch((err) => log.warn(`demo: a part failed to stop: ${String(err)}`));
    }
  };
  try {
    const serving = await startServeNode({
      ...base,
      relayUrl: relay.localUrl,
      dataDir: join(demoDir, "serve"),
      nsec: undefined,
      port: 0,
      name: "demo-serve",
      model: typeof f.model === "string" ? f.model : "stories260K",
      gpu: f.gpu === true,
    }, "serving node");
    stops.push(serving.stop);
    const client = await startClientNode({
      ...base,
      relayUrl: relay.localUrl,
      name: base.name ?? "demo-client",
    }, "client node");
    stops.push(client.stop);
    const model = serving.modelId!;
    await waitForModel(client.url, model, base.apiKey);
    console.log(
      [
        "",
        "grove demo is running: relay, serving node and client node in this process",
        `  OpenAI endpoint  ${client.url}/v1   (model "${model}")`,
        `  dashboard        ${client.url}/ui`,
        `  serving node     ${serving.url}/ui`,
        `  relay            ${relay.localUrl}`,
        "",
        `  try: curl ${client.url}/v1/chat/completions -H 'content-type: application/json' \\`,
        `         -d '{"model":"${model}","messages":[{"role":"user","content":"Once upon a time"}]}'`,
        "",
        "Ctrl-C stops it.",
      ].join("\n"),
    );
  } catch (err) {
    await stopAll();
    throw err;
  }
  const signal = await untilSignal();
  log.info(`got ${signal}, stopping the demo`);
  await stopAll();
  return await exitNow(0);
}

/** The client node lists the model once the relay folded the first serve report (≤ ~2 s). */
async function waitForModel(url: string, model: string, apiKey?: string): Promise<void> {
  const headers: HeadersInit = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/v1/models`, { headers }).catch(() => undefined);
    const body = res?.ok ? await res.json() : await res?.body?.cancel();
    if (body?.data?.some((m: { id: string }) => m.id === model)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the client node did not see ${model} in the mesh within 15 s`);
}
