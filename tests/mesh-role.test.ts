import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import { createMemberStore, openRelayDatabase, startRelay } from "../relay/mod.ts";
import { identityOf, startMeshRole } from "../mesh/mod.ts";
import { eventually } from "./support/poll.ts";

Deno.test({
  name: "a client node denied at start is admitted once it becomes a member, without a restart",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "grove-mesh-retry-" });
    const owner = identityOf(generateSecretKey());
    const client = identityOf(generateSecretKey());
    const relay = await startRelay({
      host: "127.0.0.1",
      port: 0,
      meshPort: 0,
      owner: owner.pubkey,
      open: false,
      quic: false,
      dataDir: dir,
    });
    const role = await startMeshRole({
      mode: "client",
      relayUrl: relay.localUrl,
      identity: client,
      admissionRetryMs: [200],
    });
    try {
      assert.equal(role.admitted(), false);
      const events = [];
      for await (const e of role.service.infer(REQ, new AbortController().signal)) events.push(e);
      assert.equal(events[0]?.type === "error" && events[0].code, "mesh_denied");

      const db = openRelayDatabase(dir);
      createMemberStore(db).add(client.pubkey, "member", Date.now() / 1000);
      db.close();
      await eventually(() => role.admitted(), {
        timeoutMs: 5000,
        what: "the node never asked the relay again",
      });
      // Admitted now: no mesh_denied; with no serving node the model is simply not offered.
      const after = [];
      for await (const e of role.service.infer(REQ, new AbortController().signal)) after.push(e);
      assert.notEqual(after[0]?.type === "error" && after[0].code, "mesh_denied");
    } finally {
      await role.stop();
      await relay.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

const REQ = { model: "stories260K", prompt: "Once", params: { max_tokens: 2 } };
