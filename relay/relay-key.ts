// The relay's own secp256k1 key (its Nostr pubkey in NIP-11, signer of 13534,
// 30621 and tickets, and its libp2p identity). Made once, kept in the
// database, so the relay's identity survives restarts. Never log it.

import { generateSecretKey } from "nostr-tools/pure";
import type { DatabaseSync } from "./db.ts";

export function loadOrCreateRelayKey(db: DatabaseSync): Uint8Array {
  // INSERT OR IGNORE then SELECT: two processes opening a fresh file at once
  // still agree on one key.
  db.prepare("INSERT OR IGNORE INTO relay_key (id, secret) VALUES (1, ?)").run(generateSecretKey());
  const row = db.prepare("SELECT secret FROM relay_key WHERE id = 1").get();
  const secret = row?.secret;
  if (!(secret instanceof Uint8Array) || secret.length !== 32) {
    throw new Error("the relay database holds a malformed relay key (expected 32 bytes)");
  }
  return new Uint8Array(secret);
}
