// How many sockets the relay holds, in all and per stranger address. A socket counts against
// its address (ipKey) from the moment the address is known until it closes or authenticates
// (NIP-42) as a member: members share NATs, so only strangers are capped per address. The
// global cap counts every socket, members' too: it bounds memory and file descriptors.

export interface ConnectionGate {
  /** A new socket, counted in the total; a refusal text when the relay is full. */
  open(): Slot | string;
  /** Sockets held. */
  total(): number;
  /** Sockets of strangers counted against `key`. */
  strangers(key: string): number;
}

export interface Slot {
  /** Counts the socket against address `key`; a refusal text (nothing counted) over the cap. */
  assign(key: string): string | undefined;
  /** The socket authenticated as a member: its address no longer counts it. */
  member(): void;
  /** The socket closed. Idempotent. */
  close(): void;
}

export interface GateLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export function createConnectionGate(limits: GateLimits): ConnectionGate {
  const perKey = new Map<string, number>();
  let total = 0;
  const release = (key: string) => {
    const n = (perKey.get(key) ?? 1) - 1;
    if (n > 0) perKey.set(key, n);
    else perKey.delete(key);
  };
  return {
    open() {
      if (total >= limits.maxConnections) {
        return `the relay holds its maximum of ${limits.maxConnections} connections; retry later`;
      }
      total++;
      let key: string | undefined;
      let closed = false;
      let isMember = false;
      return {
        assign(k) {
          if (closed || isMember || key !== undefined) return undefined;
          const n = perKey.get(k) ?? 0;
          if (n >= limits.maxConnectionsPerIp) {
            return `too many unauthenticated connections from ${k} ` +
              `(at most ${limits.maxConnectionsPerIp}); close some, or authenticate (NIP-42) ` +
              `as a member on the ones you have`;
          }
          perKey.set(k, n + 1);
          key = k;
          return undefined;
        },
        member() {
          if (key !== undefined && !closed) release(key);
          key = undefined;
          isMember = true;
        },
        close() {
          if (closed) return;
          closed = true;
          total--;
          if (key !== undefined) release(key);
        },
      };
    },
    total: () => total,
    strangers: (k) => perKey.get(k) ?? 0,
  };
}
