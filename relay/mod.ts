// The relay's face: what other folders (cli, tests) may use; mesh/ reaches the relay only over
// the network (docs/architecture.md).
export { DEFAULT_LIMITS, type RelayInit, type RelayLimits } from "./config.ts";
export { type RunningRelay, startRelay } from "./relay.ts";
export { DATABASE_FILE, openRelayDatabase } from "./db.ts";
export { createMemberStore, type Role } from "./members.ts";
export { NIP86_CONTENT_TYPE, toHexPubkey } from "./nip86.ts";
