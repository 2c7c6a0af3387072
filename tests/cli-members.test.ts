import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { npubEncode, nsecEncode } from "nostr-tools/nip19";
import { createReplayCache } from "../protocol/mod.ts";
import { openDatabaseFile, openRelayDatabase } from "../relay/db.ts";
import { createMemberStore } from "../relay/members.ts";
import { handleNip86 } from "../relay/nip86.ts";
import { CliError } from "../cli/cli-error.ts";
import { httpUrlOf, membersCommand } from "../cli/members-command.ts";

/** Runs the command with console.log captured; returns the exit status and what it printed. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await membersCommand(args), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

Deno.test("local: add, list and remove on a relay's data folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-members-" });
  try {
    openRelayDatabase(dir).close();
    const alice = getPublicKey(generateSecretKey());
    const bob = getPublicKey(generateSecretKey());
    assert.equal((await run(["add", npubEncode(alice), "--data", dir])).code, 0);
    const added = await run(["add", bob, "--role", "admin", "--data", dir]);
    assert.match(added.out, /added npub1\w+ as admin/);
    const list = await run(["list", "--data", dir]);
    assert.match(list.out, /^2 members/);
    assert.match(list.out, new RegExp(`member\\s+${npubEncode(alice)}\\s+${alice}`));
    assert.match(list.out, new RegExp(`admin\\s+${npubEncode(bob)}`));
    assert.match((await run(["remove", alice, "--data", dir])).out, /removed member/);

    const db = openRelayDatabase(dir);
    const members = createMemberStore(db);
    assert.equal(members.isMember(alice), false);
    assert.equal(members.role(bob), "admin");
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mistakes are CliErrors that say what was wrong", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-members-" });
  const hex = getPublicKey(generateSecretKey());
  const cases: [string[], RegExp][] = [
    [["add", "npub1notakey", "--data", dir], /not a valid npub/],
    [["add", "abc", "--data", dir], /not a pubkey/],
    [["add", hex, "--role", "owner", "--data", dir], /unknown role "owner"/],
    [["add", hex], /--data DIR .* --relay URL/],
    [["frobnicate", "--data", dir], /unknown action "frobnicate"/],
    [["remove", "--data", dir], /needs a pubkey/],
    [["list", "--relay", "ws://127.0.0.1:1"], /--nsec/],
    [["list", "--data", dir], /no relay database/],
    [["list", "--relay", "ws://127.0.0.1:1", "--nsec", "nsec1bad"], /not a valid nsec/],
  ];
  try {
    for (const [args, message] of cases) {
      await assert.rejects(() => run(args), (e: Error) => {
        assert.ok(e instanceof CliError, `${args.join(" ")}: ${e.message}`);
        assert.match(e.message, message, args.join(" "));
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("httpUrlOf turns the relay's ws URL into its NIP-86 http URL", () => {
  assert.equal(httpUrlOf("ws://127.0.0.1:7777"), "http://127.0.0.1:7777/");
  assert.equal(httpUrlOf("wss://Relay.Example/"), "https://relay.example/");
  assert.throws(() => httpUrlOf("ftp://x"), CliError);
});

Deno.test("remote: add, list and remove over NIP-86 with NIP-98 auth", async () => {
  const members = createMemberStore(openDatabaseFile(":memory:"));
  const owner = generateSecretKey();
  members.add(getPublicKey(owner), "owner", 0);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      handleNip86(req, { members, replay: createReplayCache(), now: () => Date.now() / 1000 }),
  );
  const relay = `ws://127.0.0.1:${server.addr.port}`;
  try {
    const carol = getPublicKey(generateSecretKey());
    const dave = getPublicKey(generateSecretKey());
    const nsec = nsecEncode(owner);
    assert.equal((await run(["add", carol, "--relay", relay, "--nsec", nsec])).code, 0);
    assert.equal(members.role(carol), "member");
    await run(["add", dave, "--role", "admin", "--relay", relay, "--nsec", nsec]);
    assert.equal(members.role(dave), "admin");
    const list = await run(["list", "--relay", relay, "--nsec", nsec]);
    assert.match(list.out, /^3 members/);
    await run(["remove", carol, "--relay", relay, "--nsec", nsec]);
    assert.equal(members.isMember(carol), false);

    // A plain member's key is refused, and the relay's reason is passed on.
    await assert.rejects(
      () => run(["add", carol, "--relay", relay, "--nsec", nsecEncode(generateSecretKey())]),
      /refused allowpubkey \(HTTP 403\): restricted/,
    );
  } finally {
    await server.shutdown();
  }
});
