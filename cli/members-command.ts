/**
 * `deno task members add|remove|list [npub|hex] [--role member|admin]`, on a local relay's data
 * folder (`--data DIR`) or on a remote relay over NIP-86 (`--relay URL --nsec ADMIN`).
 *
 * Local mode opens the relay's SQLite file directly; a running relay may hold it open too (WAL
 * lets both). The running relay sees the new membership on its next read, but its onChange
 * listeners (NIP-43 republish, ticket revocation) fire only once it notices the file changed,
 * which the relay does by re-reading the member table every 2 s. Remote mode needs no such help.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { decode, npubEncode } from "nostr-tools/nip19";
import {
  createMemberStore,
  DATABASE_FILE,
  openRelayDatabase,
  type Role,
  toHexPubkey,
} from "../relay/mod.ts";
import { CliError } from "./cli-error.ts";
import { parseCommandLine } from "./flags.ts";
import { addMember, listMembers, nip86Client, removeMember } from "./nip86-client.ts";

export { httpUrlOf } from "./nip86-client.ts";

const USAGE = "usage: members add|remove|list [npub|hex] [--role member|admin] " +
  "(--data DIR | --relay URL --nsec NSEC)";

const MEMBERS_FLAGS = {
  role: { type: "string" },
  data: { type: "string" },
  relay: { type: "string" },
  nsec: { type: "string" },
  "log-format": { type: "string" },
} as const;

type Action = "add" | "remove" | "list";
interface Plan {
  action: Action;
  pubkey?: string;
  role?: "member" | "admin";
}

export async function membersCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(args, MEMBERS_FLAGS);
  } catch (e) {
    if (e instanceof CliError) throw new CliError(`${e.message}\n${USAGE}`);
    throw e;
  }
  const { values, positionals } = parsed;
  const plan = parsePlan(positionals, values.role);
  if (values.data !== undefined && values.relay !== undefined) {
    throw new CliError("give either --data DIR (a local relay) or --relay URL, not both");
  }
  if (values.data !== undefined) return local(plan, values.data);
  if (values.relay !== undefined) {
    const nsec = values.nsec ?? Deno.env.get("GROVE_NSEC");
    if (nsec === undefined || nsec === "") {
      throw new CliError("--relay needs --nsec NSEC (or GROVE_NSEC): the key of an owner or admin");
    }
    return await remote(plan, values.relay, parseSecret(nsec));
  }
  throw new CliError(
    "say which relay: --data DIR for a relay's data folder on this machine, " +
      `or --relay URL --nsec NSEC for a remote one\n${USAGE}`,
  );
}

function parsePlan(positionals: string[], role: string | undefined): Plan {
  const [action, target, ...extra] = positionals;
  if (action !== "add" && action !== "remove" && action !== "list") {
    throw new CliError(
      `${action === undefined ? "missing action" : `unknown action "${action}"`}\n${USAGE}`,
    );
  }
  if (extra.length > 0) throw new CliError(`unexpected argument "${extra[0]}"\n${USAGE}`);
  if (role !== undefined && role !== "member" && role !== "admin") {
    throw new CliError(`unknown role "${role}": --role is member or admin`);
  }
  if (role !== undefined && action !== "add") throw new CliError("--role goes with add only");
  if (action === "list") {
    if (target !== undefined) throw new CliError("list takes no pubkey");
    return { action };
  }
  if (target === undefined) throw new CliError(`${action} needs a pubkey (npub or hex)`);
  let pubkey: string;
  try {
    pubkey = toHexPubkey(target);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  return { action, pubkey, role };
}

function local(plan: Plan, dataDir: string): number {
  if (!existsSync(join(dataDir, DATABASE_FILE))) {
    throw new CliError(
      `no relay database in ${dataDir} (${DATABASE_FILE} is missing); ` +
        "start the relay once with this --data, or check the path",
    );
  }
  const db = openRelayDatabase(dataDir);
  try {
    const members = createMemberStore(db);
    if (plan.action === "list") {
      printList(members.list());
      return 0;
    }
    const pubkey = plan.pubkey!;
    const current = members.role(pubkey);
    if (plan.action === "remove") {
      if (current === undefined) {
        console.log(`${name(pubkey)} was not a member; nothing to remove`);
      } else if (current === "owner") {
        throw new CliError(
          `${name(pubkey)} is the relay's owner (set by --owner) and cannot be removed here`,
        );
      } else {
        members.remove(pubkey);
        console.log(`removed ${current} ${name(pubkey)}`);
      }
      return 0;
    }
    const role = plan.role ?? (current === "admin" ? "admin" : "member");
    if (current === "owner") {
      console.log(`${name(pubkey)} is the relay's owner; role unchanged`);
    } else if (members.add(pubkey, role, Date.now() / 1000)) {
      console.log(
        current === undefined
          ? `added ${name(pubkey)} as ${role}`
          : `${name(pubkey)} is now ${role}`,
      );
    } else {
      console.log(`${name(pubkey)} is already ${role === "admin" ? "an admin" : "a member"}`);
    }
    return 0;
  } finally {
    db.close();
  }
}

async function remote(plan: Plan, relay: string, secret: Uint8Array): Promise<number> {
  const client = nip86Client(relay, secret);
  const { url } = client;
  if (plan.action === "list") {
    printList(await listMembers(client));
    return 0;
  }
  const pubkey = plan.pubkey!;
  if (plan.action === "remove") {
    await removeMember(client, pubkey);
    console.log(`removed ${name(pubkey)} from ${url}`);
  } else {
    await addMember(client, pubkey, plan.role);
    console.log(
      plan.role === "admin"
        ? `${name(pubkey)} is an admin of ${url}`
        : `${name(pubkey)} is a member of ${url}`,
    );
  }
  return 0;
}

function parseSecret(input: string): Uint8Array {
  const s = input.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) {
    return Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));
  }
  try {
    const d = decode(s);
    if (d.type === "nsec") return d.data;
  } catch {
    // reported below, without echoing what may be a secret
  }
  throw new CliError("--nsec is not a valid nsec1… key or 64 hex characters");
}

function printList(members: { pubkey: string; role?: Role; addedAt?: number }[]): void {
  console.log(`${members.length} member${members.length === 1 ? "" : "s"}`);
  for (const m of members) {
    const added = m.addedAt === undefined
      ? ""
      : `  added ${new Date(m.addedAt * 1000).toISOString().slice(0, 10)}`;
    console.log(
      `  ${(m.role ?? "member").padEnd(6)}  ${npubEncode(m.pubkey)}  ${m.pubkey}${added}`,
    );
  }
}

function name(pubkey: string): string {
  return npubEncode(pubkey);
}
