// The relay's face: what other folders (cli, mesh, tests) may use.
export {
  DEFAULT_LIMITS,
  type Logger,
  type RelayInit,
  type RelayLimits,
  silentLogger,
} from "./config.ts";
export { type RunningRelay, startRelay } from "./relay.ts";
export { relayInformation, SUPPORTED_NIPS } from "./nip11.ts";
export { normalizeRelayUrl } from "./nip42.ts";
export { RESTRICTED_KINDS } from "./read-policy.ts";
export { DATABASE_FILE, openRelayDatabase } from "./db.ts";
export { createMemberStore, type MemberStore, type Role } from "./members.ts";
export { NIP86_CONTENT_TYPE, toHexPubkey } from "./nip86.ts";
