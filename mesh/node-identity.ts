/**
 * A node's one key (docs/protocol.md#identity): its Nostr key and its libp2p key. It comes from
 * `--nsec`, else GROVE_NSEC, else `${dataDir}/identity.nsec`, written once with mode 0600 on first
 * start. No error or log line ever carries the secret.
 */
import { join } from "node:path";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { decode, npubEncode, nsecEncode } from "nostr-tools/nip19";
import {
  libp2pKeyFromNostrSecret,
  type Logger,
  peerIdFromNostrSecret,
  type PrivateKey,
  silentLogger,
} from "../protocol/mod.ts";

export interface Identity {
  secretKey: Uint8Array;
  /** x-only public key, 64 hex. */
  pubkey: string;
  npub: string;
  /** libp2p peer id of the same key ("16Uiu2…"). */
  peerId: string;
  libp2pKey: PrivateKey;
  /** Where the key came from, for the start-up log. */
  source: "flag" | "env" | "file" | "generated";
  /** The key file, when source is "file" or "generated". */
  path?: string;
}

export interface LoadIdentityOptions {
  /** `--nsec`: nsec1… or 64 hex. */
  nsec?: string;
  /** Where identity.nsec lives (created if missing). */
  dataDir: string;
  /** GROVE_NSEC is read from here; default Deno.env.get. */
  env?: (name: string) => string | undefined;
  log?: Logger;
}

export const IDENTITY_FILE = "identity.nsec";

export async function loadIdentity(opts: LoadIdentityOptions): Promise<Identity> {
  const log = opts.log ?? silentLogger;
  if (opts.nsec !== undefined) return identityOf(parseSecret(opts.nsec, "--nsec"), "flag");
  const fromEnv = (opts.env ?? ((name) => Deno.env.get(name)))("GROVE_NSEC");
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    return identityOf(parseSecret(fromEnv, "GROVE_NSEC"), "env");
  }

  const path = join(opts.dataDir, IDENTITY_FILE);
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new Error(`cannot read the identity file ${path}: ${(err as Error).message}`);
    }
  }
  if (text !== undefined) {
    await tightenMode(path, log);
    return { ...identityOf(parseSecret(text, `the identity file ${path}`), "file"), path };
  }

  const secret = generateSecretKey();
  await Deno.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  try {
    // createNew: two processes on one data folder must not each write a different key.
    await Deno.writeTextFile(path, `${nsecEncode(secret)}\n`, { mode: 0o600, createNew: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return loadIdentity(opts);
    throw new Error(`cannot write the identity file ${path}: ${(err as Error).message}`);
  }
  await tightenMode(path, log); // a umask cannot loosen 0600, but a pre-set ACL might
  const id = { ...identityOf(secret, "generated"), path };
  log.info(`generated a new node identity ${id.npub}`, { path });
  return id;
}

/** The identity of a 32-byte secret key. */
export function identityOf(secret: Uint8Array, source: Identity["source"] = "flag"): Identity {
  const pubkey = getPublicKey(secret);
  return {
    secretKey: secret,
    pubkey,
    npub: npubEncode(pubkey),
    peerId: peerIdFromNostrSecret(secret),
    libp2pKey: libp2pKeyFromNostrSecret(secret),
    source,
  };
}

/**
 * nsec1 bech32 or 64 hex characters (surrounding whitespace ignored) to 32 bytes. Errors name
 * `where` the value came from and what is wrong with it, never the value.
 */
export function parseSecret(value: string, where: string): Uint8Array {
  const s = value.trim();
  let secret: Uint8Array;
  if (/^[0-9a-fA-F]{64}$/.test(s)) {
    secret = Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));
  } else if (s.toLowerCase().startsWith("nsec1")) {
    let decoded;
    try {
      decoded = decode(s.toLowerCase());
    } catch {
      throw new Error(`${where} is not a valid nsec: its bech32 encoding or checksum is wrong`);
    }
    if (decoded.type !== "nsec") throw new Error(`${where} is not an nsec`);
    secret = decoded.data;
  } else if (s.startsWith("npub1")) {
    throw new Error(`${where} holds a public key (npub); a node needs its secret key (nsec)`);
  } else {
    throw new Error(`${where} is not a secret key: expected nsec1… or 64 hex characters`);
  }
  try {
    getPublicKey(secret); // zero or ≥ the curve order is no key
  } catch {
    throw new Error(`${where} is not a valid secp256k1 secret key`);
  }
  return secret;
}

/** A key file others can read is fixed to 0600, with a warning: the key may have leaked. */
async function tightenMode(path: string, log: Logger): Promise<void> {
  if (Deno.build.os === "windows") return;
  const { mode } = await Deno.stat(path);
  if (mode === null || (mode & 0o077) === 0) return;
  await Deno.chmod(path, 0o600);
  log.warn(
    `the identity file was readable by others (mode ${(mode & 0o777).toString(8)}); ` +
      "set it to 0600 — consider the key exposed if others use this machine",
    { path },
  );
}
