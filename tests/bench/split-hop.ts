/**
 * The bare cost of one split hop: a `/grove/stage/1` step of one row (a `dim`-f32 hidden state
 * out, the same back) from a coordinator node to a stage node in another process, over libp2p on
 * loopback, to a stage that computes nothing. Timed back to back, and after a pause like the one
 * a stage sits through while the other stages compute (the stage process is woken from idle, as
 * in a real split). What a split adds per hop beyond this is the stages' and the coordinator's.
 *
 * `deno run -A tests/bench/split-hop.ts [dim] [steps]` prints one JSON line (HopResult); the
 * stage node is the same script, run as `stage <json>` by it.
 */
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import type { ModelConfig, StageBatch } from "../../inference/mod.ts";
import { type MeshIdentity, startMeshNode } from "../../mesh/mod.ts";
import { openStageLink, serveStage, type StageLink } from "../../mesh/stage-protocol.ts";
import {
  libp2pKeyFromNostrSecret,
  type NostrEvent,
  peerIdFromNostrSecret,
} from "../../protocol/mod.ts";
import { MESH_ID, withMesh } from "../support/p2p-test-kit.ts";
import { median } from "./stats.ts";

export interface HopTimes {
  steps: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
}

export interface HopResult {
  dim: number;
  /** Steps one after another. */
  busy: HopTimes;
  /** Each step after `pauseMs` of nothing. */
  idle: HopTimes & { pauseMs: number };
}

/** A middle stage that only moves its slots' positions on: the hop, not the layers. */
function idleStage(dim: number): StageBatch {
  const positions = new Map<number, number>();
  const maxSlots = 8;
  return {
    config: { dim, layers: 4, vocabSize: 32000 } as ModelConfig,
    metadata: {},
    get tokenizer(): never {
      throw new Error("an idle stage has no tokenizer");
    },
    layerStart: 1,
    layerEnd: 2,
    ctxSize: 1 << 20,
    maxSlots,
    maxRows: 512,
    info: { backend: "cpu", adapter: "none", weightBytes: 0, bytesRead: 0, loadMs: 0 },
    acquire() {
      for (let s = 0; s < maxSlots; s++) {
        if (!positions.has(s)) {
          positions.set(s, 0);
          return s;
        }
      }
      return undefined;
    },
    release: (slot) => void positions.delete(slot),
    position: (slot) => positions.get(slot) ?? 0,
    rewind: (slot, position) => void positions.set(slot, position),
    embed: () => Promise.reject(new Error("a middle stage does not embed")),
    forward(rows) {
      for (const r of rows) positions.set(r.slot, (positions.get(r.slot) ?? 0) + r.count);
      return Promise.resolve();
    },
    logits: () => Promise.reject(new Error("a middle stage gives no logits")),
    close() {},
  };
}

/** What the stage process needs to join the parent's test mesh. */
interface StageChildInit {
  dim: number;
  secret: number[];
  rendezvous: string[];
  relayPubkey: string;
  ticket: NostrEvent;
}

/** The mesh identity of a secret: the child must be the peer its ticket names. */
function identityOf(secret: Uint8Array): MeshIdentity {
  return {
    peerId: peerIdFromNostrSecret(secret),
    pubkey: getPublicKey(secret),
    libp2pKey: libp2pKeyFromNostrSecret(secret),
  };
}

/** The stage process: joins the mesh, serves the idle stage, prints its addresses. */
async function runStageChild(init: StageChildInit): Promise<void> {
  const identity = identityOf(Uint8Array.from(init.secret));
  const node = await startMeshNode({
    identity,
    rendezvous: init.rendezvous,
    relayPubkey: init.relayPubkey,
    meshId: MESH_ID,
    ticket: () => init.ticket,
    serving: false,
  });
  const stage = idleStage(init.dim);
  await serveStage(node, { open: () => Promise.resolve({ batch: stage, release() {} }) });
  console.log(JSON.stringify({ peerId: node.peerId, addrs: node.directAddrs() }));
  // Lives until the parent kills it.
}

async function time(
  link: StageLink,
  hidden: Float32Array,
  steps: number,
  pauseMs: number,
): Promise<HopTimes> {
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    const t = performance.now();
    await link.step([{ session: "s", tokens: [1], sample: false }], hidden);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.floor(p * (times.length - 1))];
  return { steps, medianMs: median(times), p10Ms: q(0.1), p90Ms: q(0.9) };
}

export async function measureHop(dim: number, steps: number, pauseMs = 40): Promise<HopResult> {
  let result: HopResult | undefined;
  await withMesh(async (mesh) => {
    const secret = generateSecretKey();
    const id = identityOf(secret);
    mesh.allowed.add(id.peerId);
    const init: StageChildInit = {
      dim,
      secret: [...secret],
      rendezvous: mesh.rendezvous,
      relayPubkey: mesh.relayPubkey,
      ticket: mesh.ticketFor(id),
    };
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "stage", JSON.stringify(init)],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let line = "";
      while (!line.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the stage process ended before it listened");
        line += value;
      }
      const target = JSON.parse(line.split("\n")[0]) as { peerId: string; addrs: string[] };
      const coordinator = await mesh.node();
      const link = await openStageLink(coordinator, target, {
        planId: "0".repeat(64),
        sha256: "0".repeat(64),
        candidates: [],
        ctxSize: 1 << 20,
        range: [1, 2],
      });
      const hidden = new Float32Array(dim).fill(0.5);
      const open = { sampler: { temperature: 0 } };
      await link.step([{ session: "s", tokens: [1], sample: false, open }], hidden);
      await time(link, hidden, 300, 0); // warm-up: V8 compiles the frame code
      const busy = await time(link, hidden, steps, 0);
      const idle = { ...await time(link, hidden, Math.ceil(steps / 10), pauseMs), pauseMs };
      link.destroy();
      result = { dim, busy, idle };
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  });
  return result!;
}

/** Runs measureHop in a child process: its result, or why it failed. */
export async function hopInChild(dim: number, steps: number): Promise<HopResult | Error> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, String(dim), String(steps)],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (out.success && text.startsWith("{")) return JSON.parse(text) as HopResult;
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
  return new Error(err.slice(0, 200) || `exit code ${out.code}`);
}

if (import.meta.main) {
  if (Deno.args[0] === "stage") {
    await runStageChild(JSON.parse(Deno.args[1]));
  } else {
    const dim = Number(Deno.args[0] ?? 2048);
    const steps = Number(Deno.args[1] ?? 2000);
    const pauseMs = Number(Deno.args[2] ?? 40);
    console.log(JSON.stringify(await measureHop(dim, steps, pauseMs)));
    Deno.exit(0); // libp2p leaves handles behind after stop()
  }
}
