// The relay's secret key lives in relay.sqlite (and its -wal): a data folder left by an older
// Grove, 0755 with 0644 files, is tightened when `main.ts relay` starts (issue 9, finding 6):
// folder 0700, files 0600, each change said in the log; and the relay then works as before.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DATABASE_FILE, openRelayDatabase } from "../relay/mod.ts";
import { connectAs, note, query, relayTest, startRelayHarness } from "./relay-harness.ts";

const mode = (path: string) => (Deno.statSync(path).mode ?? 0) & 0o777;

relayTest("data folder: loose modes from an older relay are tightened at start", async () => {
  const files = [DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`];
  const h = await startRelayHarness({
    members: 1,
    prefix: "grove-relay-modes-",
    async prepare(dir) {
      openRelayDatabase(dir).close(); // a real database, its key made
      await Deno.writeFile(join(dir, files[1]), new Uint8Array()); // a -wal left behind
      for (const f of files.slice(0, 2)) await Deno.chmod(join(dir, f), 0o644);
      await Deno.chmod(dir, 0o755);
    },
  });
  try {
    assert.equal(mode(h.dataDir), 0o700, "the data folder");
    for (const f of files) assert.equal(mode(join(h.dataDir, f)), 0o600, f);
    const log = h.output().stderr;
    assert.match(log, /the relay's data folder was open to others \(mode 755\); set it to 700/);
    assert.match(log, /a relay database file was open to others \(mode 644\); set it to 600/);
    // The relay works on the tightened folder.
    const client = await connectAs(h, h.members[0]);
    try {
      const ev = note(h.members[0], "after tightening");
      assert.deepEqual(await client.publish(ev), ["OK", ev.id, true, ""]);
      assert.equal((await query(client, { ids: [ev.id] })).length, 1);
    } finally {
      await client.close();
    }
  } finally {
    const out = await h.stop();
    assert.equal(out.code, 0, out.stderr.slice(-2000));
  }
});
