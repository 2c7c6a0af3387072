/**
 * What the rendezvous carries for members through its circuits (docs/operating-a-relay.md#metrics):
 * bytes relayed each way and circuits opened, counted by wrapping the components libp2p's
 * circuit relay server is given. Every byte of a circuit passes the relay twice, once read from
 * each side's stream, so bytes read on the dialer's hop stream and on the listener's stop stream
 * are exactly the relayed traffic (plus the few bytes of the hop/stop handshake).
 */
import type { Connection, Stream, StreamHandler, StreamHandlerOptions } from "@libp2p/interface";
import type { ConnectionManager, Registrar } from "@libp2p/interface-internal";

const HOP = "/libp2p/circuit/relay/0.2.0/hop";
const STOP = "/libp2p/circuit/relay/0.2.0/stop";

export interface RelayTraffic {
  /** Bytes read from the side that dialed through the relay (its hop streams). */
  fromDialers: number;
  /** Bytes read from the side reached through the relay (its stop streams). */
  fromListeners: number;
  /** Circuits the relay opened to a listener (stop streams), ever. */
  circuitsOpened: number;
  /** Those still open. */
  circuitsOpen: number;
}

export function createRelayTraffic(): RelayTraffic {
  return { fromDialers: 0, fromListeners: 0, circuitsOpened: 0, circuitsOpen: 0 };
}

interface RelayComponents {
  registrar: Registrar;
  connectionManager: ConnectionManager;
}

/** A circuit relay server factory whose hop and stop streams are counted into `traffic`. */
export function countedRelay<C extends RelayComponents, S>(
  factory: (components: C) => S,
  traffic: RelayTraffic,
): (components: C) => S {
  return (components) =>
    factory(
      new Proxy(components, {
        get(target, prop, receiver) {
          if (prop === "registrar") return countingRegistrar(target.registrar, traffic);
          if (prop === "connectionManager") {
            return countingConnections(target.connectionManager, traffic);
          }
          return Reflect.get(target, prop, receiver);
        },
      }),
    );
}

function countBytes(stream: Stream, add: (n: number) => void): void {
  stream.addEventListener("message", (evt) => add(evt.data.byteLength));
}

function countingRegistrar(registrar: Registrar, traffic: RelayTraffic): Registrar {
  return new Proxy(registrar, {
    get(target, prop, receiver) {
      if (prop === "handle") {
        return (protocol: string, handler: StreamHandler, opts?: StreamHandlerOptions) =>
          target.handle(protocol, (stream, conn) => {
            if (protocol === HOP) countBytes(stream, (n) => traffic.fromDialers += n);
            return handler(stream, conn);
          }, opts);
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The stop stream is opened on a connection the server takes from getConnections. */
function countingConnections(cm: ConnectionManager, traffic: RelayTraffic): ConnectionManager {
  const wrap = (conn: Connection): Connection =>
    new Proxy(conn, {
      get(target, prop) {
        if (prop === "newStream") {
          return async (
            protocols: string | string[],
            opts?: Parameters<Connection["newStream"]>[1],
          ) => {
            const stream = await target.newStream(protocols, opts);
            if ([protocols].flat().includes(STOP)) {
              traffic.circuitsOpened++;
              traffic.circuitsOpen++;
              countBytes(stream, (n) => traffic.fromListeners += n);
              stream.addEventListener("close", () => traffic.circuitsOpen--, { once: true });
            }
            return stream;
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return new Proxy(cm, {
    get(target, prop, receiver) {
      if (prop === "getConnections") {
        return (...args: Parameters<ConnectionManager["getConnections"]>) =>
          target.getConnections(...args).map(wrap);
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
