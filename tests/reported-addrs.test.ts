// Issue 9, finding 13, against `main.ts relay` as users run it: a serving member's report may
// carry any `addrs`, and the relay republishes them under its own signature in kind 30621, which
// every member dials first. A member reporting the cloud metadata address and another peer's id
// must not get either into 30621; its own address still goes out, ending in its peer id.
import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey } from "nostr-tools/pure";
import { KIND, parseMeshStatus, peerIdFromNostrSecret } from "../protocol/mod.ts";
import { connectAs, query, relayTest, sharedRelay } from "./relay-harness.ts";
import { eventually } from "./support/poll.ts";

const relay = sharedRelay({ members: 1, prefix: "grove-reported-addrs-" });

relayTest(
  "reported addrs: metadata, link-local and foreign peer ids never reach 30621",
  async () => {
    const r = await relay.get();
    const member = r.members[0];
    const own = peerIdFromNostrSecret(member.sk);
    const foreign = peerIdFromNostrSecret(generateSecretKey());
    const client = await connectAs(r, member);
    try {
      const content = {
        modelId: "stories260K",
        modelName: "Stories 260K",
        peerId: own,
        nodeName: "hostile-box",
        addrs: [
          "/ip4/169.254.169.254/tcp/80",
          `/ip4/169.254.169.254/tcp/80/p2p/${own}`,
          `/ip4/127.0.0.1/tcp/4002/p2p/${foreign}`,
          "/ip6/fd00:ec2::254/tcp/80",
          "/dns4/metadata.google.internal/tcp/80",
          "/ip4/127.0.0.1/tcp/4001",
        ],
        stages: null,
        capacity: { memoryBytes: 1_000_000 },
        load: { active: 0, queued: 0 },
        state: "running",
      };
      const ev = finalizeEvent({
        kind: KIND.SERVE_REPORT,
        created_at: Math.floor(Date.now() / 1000),
        tags: [],
        content: JSON.stringify(content),
      }, member.sk);
      const ok = await client.publish(ev);
      assert.deepEqual(ok.slice(2), [true, ""], `the report was refused: ${JSON.stringify(ok)}`);
      const target = await eventually(async () => {
        const [status] = await query(client, { kinds: [KIND.MESH_STATUS], authors: [r.pubkey] });
        if (!status) return undefined;
        return parseMeshStatus(status, { relayPubkey: r.pubkey }).serveTargets
          .find((t) => t.peerId === own);
      }, { timeoutMs: 5000, what: "the report never showed up in 30621" });
      assert.deepEqual(target.addrs, [`/ip4/127.0.0.1/tcp/4001/p2p/${own}`]);
      const text = JSON.stringify(target);
      for (const bad of ["169.254.169.254", foreign, "fd00:ec2", "metadata.google"]) {
        assert.ok(!text.includes(bad), `30621 carries ${bad}`);
      }
      await eventually(
        () => /stripped addresses from .*169\.254\.169\.254/.test(r.output().stderr),
        { timeoutMs: 3000, what: "the relay did not log what it stripped" },
      );
    } finally {
      await client.close();
    }
  },
);

relayTest("reported addrs: stop the shared relay", async () => {
  await relay.stop();
});
