/**
 * Noise for every libp2p node of Grove, each encrypted message handed to the connection below
 * as one buffer.
 *
 * @chainsafe/libp2p-noise 17 passes each message down as a list of two buffers, its 2-byte
 * length and its ciphertext, and @libp2p/tcp 11 writes a list buffer by buffer. Every message
 * thus cost two socket writes, so two TCP segments (the socket sets no-delay), and woke the
 * receiver up to twice. Noise 14 had joined the two (ChainSafe/js-libp2p-noise#387, "sending
 * lots of tiny buffers kills TCP performance"); the rewrite to message streams lost that.
 * A streamed answer sends one small message every few milliseconds, and a split model one
 * per stage and step, so the mesh paid it on its hottest path.
 */
import { noise } from "@chainsafe/libp2p-noise";
import type { ConnectionEncrypter, MessageStream } from "@libp2p/interface";

type NoiseFactory = ReturnType<typeof noise>;

export function noiseOneWrite(): NoiseFactory {
  const make = noise();
  return (components) => {
    const inner = make(components);
    // The rest of the encrypter (its protocol name, its extensions) stays noise's own.
    const joined: ConnectionEncrypter = Object.create(inner);
    joined.secureOutbound = (conn, options) => inner.secureOutbound(joinSends(conn), options);
    joined.secureInbound = (conn, options) => inner.secureInbound(joinSends(conn), options);
    return joined as typeof inner;
  };
}

/** `conn`, its sends joined into one buffer each; noise is the only writer once it holds it. */
function joinSends<T extends MessageStream>(conn: T): T {
  const send = conn.send.bind(conn);
  // A list's subarray() copies only when it holds two or more buffers.
  conn.send = (data) => send(data instanceof Uint8Array ? data : data.subarray());
  return conn;
}
