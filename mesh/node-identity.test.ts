import assert from "node:assert/strict";
import { join } from "node:path";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { npubEncode, nsecEncode } from "nostr-tools/nip19";
import { type Logger, pubkeyFromPeerId } from "../protocol/mod.ts";
import { IDENTITY_FILE, loadIdentity, parseSecret } from "./node-identity.ts";

const noEnv = () => undefined;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function recordingLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, error() {}, warn: (msg) => void warnings.push(msg) };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "grove-identity-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("identity: generated once, kept with mode 0600, the same key on the next start", async () => {
  await withDir(async (dir) => {
    const dataDir = join(dir, "nested", "data");
    const first = await loadIdentity({ dataDir, env: noEnv });
    assert.equal(first.source, "generated");
    const path = join(dataDir, IDENTITY_FILE);
    assert.equal(first.path, path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(path), /^nsec1[0-9a-z]+\n$/);

    const again = await loadIdentity({ dataDir, env: noEnv });
    assert.equal(again.source, "file");
    assert.equal(again.pubkey, first.pubkey);
    assert.equal(again.peerId, first.peerId);
    // One key: the peer id names the Nostr pubkey, and the libp2p key is that secret.
    assert.equal(pubkeyFromPeerId(first.peerId), first.pubkey);
    assert.equal(first.npub, npubEncode(first.pubkey));
    assert.equal(first.libp2pKey.type, "secp256k1");
    assert.deepEqual(first.libp2pKey.raw, first.secretKey);
  });
});

Deno.test("identity: a key file readable by others is set to 0600 with a warning", async () => {
  await withDir(async (dir) => {
    const sk = generateSecretKey();
    const path = join(dir, IDENTITY_FILE);
    await Deno.writeTextFile(path, nsecEncode(sk));
    await Deno.chmod(path, 0o644);
    const log = recordingLog();
    const id = await loadIdentity({ dataDir: dir, env: noEnv, log });
    assert.equal(id.pubkey, getPublicKey(sk));
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(log.warnings.length, 1);
    assert.match(log.warnings[0], /readable by others \(mode 644\)/);
    assert.ok(!log.warnings[0].includes(nsecEncode(sk)));
  });
});

Deno.test("identity: --nsec beats GROVE_NSEC beats the file; nsec1 and hex both work", async () => {
  await withDir(async (dir) => {
    const fileKey = await loadIdentity({ dataDir: dir, env: noEnv });
    const envSk = generateSecretKey();
    const flagSk = generateSecretKey();
    const env = (name: string) => name === "GROVE_NSEC" ? `  ${hex(envSk)}\n` : undefined;
    const fromEnv = await loadIdentity({ dataDir: dir, env });
    assert.equal(fromEnv.source, "env");
    assert.equal(fromEnv.pubkey, getPublicKey(envSk));
    const fromFlag = await loadIdentity({ dataDir: dir, env, nsec: nsecEncode(flagSk) });
    assert.equal(fromFlag.source, "flag");
    assert.equal(fromFlag.pubkey, getPublicKey(flagSk));
    assert.notEqual(fromFlag.pubkey, fileKey.pubkey);
    // The real environment variable is what the default reads.
    Deno.env.set("GROVE_NSEC", nsecEncode(envSk));
    try {
      assert.equal((await loadIdentity({ dataDir: dir })).pubkey, getPublicKey(envSk));
    } finally {
      Deno.env.delete("GROVE_NSEC");
    }
  });
});

Deno.test("identity: malformed secrets give clear errors that never echo the value", () => {
  const sk = generateSecretKey();
  const nsec = nsecEncode(sk);
  const broken = nsec.slice(0, -1) + (nsec.endsWith("q") ? "p" : "q"); // checksum breaks
  const cases: [string, RegExp][] = [
    [broken, /--nsec is not a valid nsec: .*checksum/],
    [npubEncode(getPublicKey(sk)), /public key \(npub\).*secret key/],
    [hex(sk).slice(2), /not a secret key: expected nsec1… or 64 hex/],
    ["0".repeat(64), /not a valid secp256k1 secret key/],
    ["f".repeat(64), /not a valid secp256k1 secret key/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(() => parseSecret(value, "--nsec"), (err: Error) => {
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes(value), `the error echoes the secret: ${err.message}`);
      return true;
    });
  }
  assert.deepEqual(parseSecret(nsec.toUpperCase(), "x"), sk);
});

Deno.test("identity: a corrupt key file is named in the error, not started over", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, IDENTITY_FILE), "garbage", { mode: 0o600 });
    await assert.rejects(
      loadIdentity({ dataDir: dir, env: noEnv }),
      new RegExp(`the identity file ${join(dir, IDENTITY_FILE)} is not a secret key`),
    );
  });
});
