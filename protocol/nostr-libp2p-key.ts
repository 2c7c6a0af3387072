/**
 * docs/protocol.md#identity: a node has one secp256k1 key. The secret is both its Nostr key and its
 * libp2p key, so the peer id a libp2p handshake authenticates names the Nostr member directly.
 */
import { privateKeyFromRaw } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id";

export type PrivateKey = ReturnType<typeof privateKeyFromRaw>;

/** The libp2p secp256k1 private key for a 32-byte Nostr secret key. */
export function libp2pKeyFromNostrSecret(secret: Uint8Array): PrivateKey {
  if (secret.length !== 32) {
    throw new Error(`a Nostr secret key is 32 bytes, got ${secret.length}`);
  }
  // 32 raw bytes are read as secp256k1 (Ed25519 raw keys are 64 bytes).
  const key = privateKeyFromRaw(secret);
  if (key.type !== "secp256k1") throw new Error(`expected a secp256k1 key, got ${key.type}`);
  return key;
}

/** The libp2p peer id (base58, "16Uiu2…") of a Nostr secret key. */
export function peerIdFromNostrSecret(secret: Uint8Array): string {
  return peerIdFromPrivateKey(libp2pKeyFromNostrSecret(secret)).toString();
}

/**
 * The Nostr (x-only, hex) pubkey named by a secp256k1 peer id; undefined for other key types or
 * strings that are no peer id. The peer id inlines the 33-byte compressed public key; dropping
 * its parity byte leaves the x coordinate, which is the Nostr pubkey.
 */
export function pubkeyFromPeerId(peerId: string): string | undefined {
  let raw: Uint8Array | undefined;
  try {
    const id = peerIdFromString(peerId);
    if (id.type !== "secp256k1") return undefined;
    raw = id.publicKey?.raw;
  } catch {
    return undefined;
  }
  if (raw === undefined || raw.length !== 33) return undefined;
  return Array.from(raw.subarray(1), (b) => b.toString(16).padStart(2, "0")).join("");
}
