/**
 * A file server on 127.0.0.1 for partial-model tests: it honours `Range: bytes=A-B` with 206
 * (unless told to ignore it), counts every byte it sends, can cut a response after some bytes
 * and can stand in for Hugging Face, whose resolve URL redirects to a CDN and names an LFS
 * file's sha256 in `x-linked-etag`.
 */
export interface RangeServerOptions {
  ignoreRange?: boolean;
  /** Headers of the first hop: with `redirect`, the 302's; else the file's answer. */
  headers?: Record<string, string>;
  /** Answer every path but /cdn/… with a 302 to /cdn/file.gguf. */
  redirect?: boolean;
  /** Responses (by index among the file's answers) cut after that many body bytes. */
  cuts?: Map<number, number>;
}

export interface RangeServer {
  base: string; // http://127.0.0.1:PORT
  url: string; // the file, at /files/model.gguf
  /** Each file answer's Range header (null: none), in order. */
  ranges: (string | null)[];
  /** How many times each byte of the file was sent. */
  sent: Uint16Array;
  /** Bytes of the file sent in all. */
  bytesSent(): number;
  close(): Promise<void>;
}

export function rangeServer(data: Uint8Array, options: RangeServerOptions = {}): RangeServer {
  const ranges: (string | null)[] = [];
  const sent = new Uint16Array(data.length);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (options.redirect && !path.startsWith("/cdn/")) {
      return new Response(null, {
        status: 302,
        headers: { location: "/cdn/file.gguf", ...options.headers },
      });
    }
    const index = ranges.length;
    const header = req.headers.get("range");
    ranges.push(header);
    const m = header === null || options.ignoreRange ? null : /^bytes=(\d+)-(\d+)$/.exec(header);
    const start = m ? Number(m[1]) : 0;
    const end = m ? Math.min(Number(m[2]) + 1, data.length) : data.length;
    if (m && start >= data.length) return new Response(null, { status: 416 });
    const headers: Record<string, string> = {
      "content-length": String(end - start),
      ...(options.redirect ? {} : options.headers),
    };
    if (m) headers["content-range"] = `bytes ${start}-${end - 1}/${data.length}`;
    const cut = options.cuts?.get(index);
    let at = start;
    const limit = cut === undefined ? end : Math.min(end, start + cut);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Ending the body short of its Content-Length makes the server drop the connection.
        if (at >= limit) return controller.close();
        const next = Math.min(limit, at + 16384);
        for (let i = at; i < next; i++) sent[i]++;
        controller.enqueue(data.slice(at, next));
        at = next;
      },
    });
    return new Response(body, { status: m ? 206 : 200, headers });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    base,
    url: `${base}/files/model.gguf`,
    ranges,
    sent,
    bytesSent: () => sent.reduce((a, b) => a + b, 0),
    close: () => server.shutdown(),
  };
}
