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
import { parseArgs } from "node:util";
import { HelpRequested, wantsHelp } from "./help.ts";
import { decode, npubEncode } from "nostr-tools/nip19";
import { nip98Header } from "../protocol/mod.ts";
import {
  createMemberStore,
  DATABASE_FILE,
  NIP86_CONTENT_TYPE,
  openRelayDatabase,
  type Role,
  toHexPubkey,
} from "../relay/mod.ts";
import { CliError } from "./cli-error.ts";

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
  if (wantsHelp(args)) throw new HelpRequested(MEMBERS_FLAGS);
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: MEMBERS_FLAGS });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n${USAGE}`);
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
  const url = httpUrlOf(relay);
  const call = (method: string, params: unknown[]) => rpc(url, secret, method, params);
  if (plan.action === "list") {
    const result = await call("listallowedpubkeys", []);
    if (!Array.isArray(result)) throw new Error(`${url} answered listallowedpubkeys oddly`);
    printList(result as { pubkey: string; role?: Role }[]);
    return 0;
  }
  const pubkey = plan.pubkey!;
  if (plan.action === "remove") {
    await call("disallowpubkey", [pubkey]);
    console.log(`removed ${name(pubkey)} from ${url}`);
  } else if (plan.role === "admin") {
    await call("grantadmin", [pubkey]);
    console.log(`${name(pubkey)} is an admin of ${url}`);
  } else {
    await call("allowpubkey", [pubkey]);
    // An explicit --role member also takes away admin rights (owner only); plain add never does.
    if (plan.role === "member") await call("revokeadmin", [pubkey]);
    console.log(`${name(pubkey)} is a member of ${url}`);
  }
  return 0;
}

/** One NIP-86 call; throws with the relay's own error message when it refuses. */
async function rpc(url: string, secret: Uint8Array, method: string, params: unknown[]) {
  const body = new TextEncoder().encode(JSON.stringify({ method, params }));
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": NIP86_CONTENT_TYPE,
        authorization: nip98Header(secret, { url, method: "POST", body }),
      },
      body,
    });
  } catch (e) {
    throw new Error(`could not reach ${url}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let json: { result?: unknown; error?: string } | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // reported below
  }
  if (json?.error) throw new Error(`${url} refused ${method} (HTTP ${res.status}): ${json.error}`);
  if (!res.ok || json === undefined) {
    throw new Error(`${url} answered ${method} with HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  return json.result;
}

/** NIP-86 lives at the relay's own URL, in its http form. */
export function httpUrlOf(relay: string): string {
  let u: URL;
  try {
    u = new URL(relay);
  } catch {
    throw new CliError(`--relay ${JSON.stringify(relay)} is not a URL (like ws://127.0.0.1:7777)`);
  }
  const scheme = { "ws:": "http:", "wss:": "https:", "http:": "http:", "https:": "https:" }[
    u.protocol
  ];
  if (scheme === undefined) throw new CliError(`--relay ${relay}: use a ws:// or wss:// URL`);
  return `${scheme}//${u.host}${u.pathname}`;
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
