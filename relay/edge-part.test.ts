import assert from "node:assert/strict";
import type { Logger } from "../protocol/mod.ts";
import { DEFAULT_LIMITS } from "./config.ts";
import { createEdgePart, type EdgePartInit } from "./edge-part.ts";
import { lateUrls } from "./relay-urls.ts";

function stubServer() {
  const seen: string[] = [];
  let closed = 0;
  return {
    seen,
    closed: () => closed,
    fetch(req: Request, ip?: string) {
      seen.push(`${req.method} ${new URL(req.url).pathname} from ${ip}`);
      return Promise.resolve(new Response("hello"));
    },
    accept() {},
    closeAll() {
      closed++;
    },
  };
}

function init(over: Partial<EdgePartInit> = {}): EdgePartInit {
  const log: Logger = { info() {}, warn() {}, error() {} };
  return { host: "127.0.0.1", port: 0, trustProxy: false, limits: DEFAULT_LIMITS, log, ...over };
}

Deno.test("edge part: sets the URLs of the port it bound and hands requests to the app", async () => {
  const server = stubServer();
  const urls = lateUrls();
  const edge = createEdgePart(init(), { server, urls });
  await edge.start();
  try {
    const { http, local, ws } = urls.get();
    assert.match(local, /^ws:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(ws, local);
    const res = await fetch(`${http}/nip11`);
    assert.equal(await res.text(), "hello");
    assert.deepEqual(server.seen, ["GET /nip11 from 127.0.0.1"]);
  } finally {
    await edge.stop();
  }
  assert.equal(server.closed(), 1, "its WebSockets were closed at stop");
});

Deno.test("edge part: a port already taken fails its start, and no URLs are set", async () => {
  const takenUrls = lateUrls();
  const taken = createEdgePart(init(), { server: stubServer(), urls: takenUrls });
  await taken.start();
  try {
    const port = Number(new URL(takenUrls.get().http).port);
    const urls = lateUrls();
    const second = createEdgePart(init({ port }), { server: stubServer(), urls });
    await assert.rejects(second.start(), /could not listen on 127\.0\.0\.1:\d+/);
    assert.throws(() => urls.get(), /known once its edge listens/);
    await second.stop(); // never listened: stopping it is harmless
  } finally {
    await taken.stop();
  }
});

Deno.test("edge part: --trust-proxy without --public-url is warned about at start", async () => {
  const warnings: string[] = [];
  const log: Logger = { info() {}, warn: (m) => warnings.push(m), error() {} };
  const edge = createEdgePart(init({ trustProxy: true, log }), {
    server: stubServer(),
    urls: lateUrls(),
  });
  await edge.start();
  await edge.stop();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /--trust-proxy without --public-url/);
});
