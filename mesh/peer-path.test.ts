import assert from "node:assert/strict";
import type { MeshNode } from "./p2p-node.ts";
import { pathOf, peerPath } from "./peer-path.ts";
import { withMesh } from "../tests/support/p2p-test-kit.ts";
import { eventually } from "../tests/support/poll.ts";
import { readOneFrame, writeFrame } from "./stream-frames.ts";

const ECHO = "/grove-test/path-echo/1";
const conn = (status: string, addr: string) => ({ status, remoteAddr: addr });
const CIRCUIT = "/ip4/127.0.0.1/tcp/4001/p2p/RELAY/p2p-circuit";

Deno.test("path: an open non-circuit connection is direct, circuits only are relayed", () => {
  assert.equal(pathOf([]), null);
  assert.equal(pathOf([conn("closed", "/ip4/127.0.0.1/tcp/5")]), null, "closed counts as none");
  assert.equal(pathOf([conn("open", CIRCUIT)]), "relayed");
  assert.equal(pathOf([conn("open", CIRCUIT), conn("open", "/ip4/127.0.0.1/tcp/5")]), "direct");
  assert.equal(pathOf([conn("open", CIRCUIT), conn("closing", "/ip4/127.0.0.1/tcp/5")]), "relayed");
});

async function echo(from: MeshNode, to: MeshNode, addrs: string[]): Promise<void> {
  await to.handle(ECHO, async (stream) => {
    await writeFrame(stream, await readOneFrame(stream, 2000));
    await stream.close();
  });
  const stream = await from.dialProtocol(to.peerId, addrs, ECHO, AbortSignal.timeout(8000));
  await writeFrame(stream, "hi");
  assert.equal(await readOneFrame(stream, 3000), "hi");
  await stream.close();
}

Deno.test("path: two nodes on loopback that talked are direct to each other", async () => {
  await withMesh(async (mesh) => {
    const [a, b] = [await mesh.node(), await mesh.node()];
    assert.equal(peerPath(b, a.peerId), null, "no connection before the first request");
    await echo(b, a, a.directAddrs());
    assert.equal(peerPath(b, a.peerId), "direct");
    assert.equal(peerPath(a, b.peerId), "direct", "the path is the same seen from the other end");
    assert.equal(peerPath(undefined, a.peerId), null, "no node, no path");
  });
});

Deno.test("path: a serving node reached only through the relay's circuit is relayed", async () => {
  await withMesh(async (mesh) => {
    const a = await mesh.node({ serving: true });
    await eventually(() => a.circuitAddrs().length > 0, {
      timeoutMs: 5000,
      what: "the serving node's circuit reservation",
    });
    const b = await mesh.node();
    await echo(b, a, []);
    assert.equal(peerPath(b, a.peerId), "relayed");
  });
});
