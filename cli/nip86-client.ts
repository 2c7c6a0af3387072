/**
 * The client side of a relay's NIP-86 management API (relay/nip86.ts): one signed call, and the
 * member operations `members --relay` and a node's /api/members make with it. A call is signed
 * with NIP-98 by the caller's key, which the relay accepts only from its owner or an admin.
 */
import { nip98Header } from "../protocol/mod.ts";
import { NIP86_CONTENT_TYPE, type Role } from "../relay/mod.ts";
import { CliError } from "./cli-error.ts";

/**
 * Why a call failed: the relay refused it (its words in `relayError`), could not be reached, or
 * answered something that is not NIP-86.
 */
export class Nip86Error extends Error {
  override name = "Nip86Error";
  constructor(
    readonly code: "relay_refused" | "relay_unreachable" | "relay_bad_answer",
    message: string,
    readonly status?: number,
    readonly relayError?: string,
  ) {
    super(message);
  }
}

export interface Nip86Client {
  /** The relay's NIP-86 URL (its http form). */
  url: string;
  call(method: string, params: unknown[]): Promise<unknown>;
}

export interface MemberRecord {
  pubkey: string;
  role: Role;
}

export function nip86Client(relay: string, secret: Uint8Array): Nip86Client {
  const url = httpUrlOf(relay);
  return { url, call: (method, params) => rpc(url, secret, method, params) };
}

export async function listMembers(client: Nip86Client): Promise<MemberRecord[]> {
  const result = await client.call("listallowedpubkeys", []);
  if (!Array.isArray(result)) {
    throw new Nip86Error("relay_bad_answer", `${client.url} answered listallowedpubkeys oddly`);
  }
  return (result as { pubkey: string; role?: Role }[]).map((m) => ({
    pubkey: m.pubkey,
    role: m.role ?? "member",
  }));
}

/**
 * Adds `pubkey` (hex): "admin" grants admin rights (owner only); an explicit "member" also takes
 * them away (owner only); no role adds a member and leaves an existing admin or owner as it is.
 */
export async function addMember(
  client: Nip86Client,
  pubkey: string,
  role?: "member" | "admin",
): Promise<void> {
  if (role === "admin") {
    await client.call("grantadmin", [pubkey]);
    return;
  }
  await client.call("allowpubkey", [pubkey]);
  if (role === "member") await client.call("revokeadmin", [pubkey]);
}

export async function removeMember(client: Nip86Client, pubkey: string): Promise<void> {
  await client.call("disallowpubkey", [pubkey]);
}

/** One NIP-86 call; throws a Nip86Error with the relay's own words when it refuses. */
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
    throw new Nip86Error("relay_unreachable", `could not reach ${url}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let json: { result?: unknown; error?: string } | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // reported below
  }
  if (json?.error) {
    throw new Nip86Error(
      "relay_refused",
      `${url} refused ${method} (HTTP ${res.status}): ${json.error}`,
      res.status,
      json.error,
    );
  }
  if (!res.ok || json === undefined) {
    throw new Nip86Error(
      "relay_bad_answer",
      `${url} answered ${method} with HTTP ${res.status}: ${text.slice(0, 200)}`,
      res.status,
    );
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
