import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DownloadError, downloadFile, type DownloadProgress } from "./download.ts";

// A file server on 127.0.0.1 that honours Range (unless told not to) and can cut the
// connection after some bytes of its first few responses.
interface ServerOptions {
  ignoreRange?: boolean;
  cutAfter?: number; // bytes of body sent before the connection is dropped
  cutTimes?: number; // how many responses get cut (default 1)
  status?: number;
}

function fileServer(data: Uint8Array, options: ServerOptions = {}) {
  const ranges: (string | null)[] = [];
  let cuts = options.cutTimes ?? 1;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const range = req.headers.get("range");
    ranges.push(range);
    if (options.status) return new Response("nope", { status: options.status });
    const start = range && !options.ignoreRange ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
    if (start >= data.length && range) return new Response(null, { status: 416 });
    const body = data.subarray(start);
    const headers: Record<string, string> = { "content-length": String(body.length) };
    if (start > 0) headers["content-range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    const cut = options.cutAfter !== undefined && cuts-- > 0 ? options.cutAfter : undefined;
    return new Response(bodyStream(body, cut), { status: start > 0 ? 206 : 200, headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/model.gguf`, ranges, server };
}

function bodyStream(body: Uint8Array, cutAfter: number | undefined): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      const end = Math.min(body.length, sent + 16384, cutAfter ?? Infinity);
      // Ending the body short of its Content-Length makes the server drop the connection.
      if (sent >= body.length || (cutAfter !== undefined && sent >= cutAfter)) {
        return controller.close();
      }
      controller.enqueue(body.slice(sent, end));
      sent = end;
    },
  });
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const DATA = randomBytes(300_000);
const DATA_SHA = sha256(DATA);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("downloadFile: full download, verified, renamed into place", async () => {
  const dir = await Deno.makeTempDir();
  const { url, server } = fileServer(DATA);
  try {
    const events: DownloadProgress[] = [];
    const dest = `${dir}/sub/model.gguf`;
    const result = await downloadFile(url, dest, {
      sha256: DATA_SHA,
      size: DATA.length,
      onProgress: (p) => events.push({ ...p }),
    });
    assert.equal(result.sha256, DATA_SHA);
    assert.equal(result.size, DATA.length);
    assert.equal(result.resumedFrom, 0);
    assert.deepEqual(await Deno.readFile(dest), DATA);
    assert.equal(await exists(`${dest}.part`), false);
    const last = events.at(-1)!;
    assert.equal(last.done, true);
    assert.equal(last.received, DATA.length);
    assert.ok(events.length > 2, "progress is reported while bytes arrive");
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: resumes a pre-existing .part with a Range request", async () => {
  const dir = await Deno.makeTempDir();
  const { url, ranges, server } = fileServer(DATA);
  try {
    const dest = `${dir}/model.gguf`;
    await Deno.writeFile(`${dest}.part`, DATA.subarray(0, 100_000));
    const result = await downloadFile(url, dest, { sha256: DATA_SHA, size: DATA.length });
    assert.deepEqual(ranges, ["bytes=100000-"]);
    assert.equal(result.resumedFrom, 100_000);
    assert.equal(result.sha256, DATA_SHA); // the hash covers the bytes from the old part too
    assert.deepEqual(await Deno.readFile(dest), DATA);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a cut connection keeps the .part and the next call resumes", async () => {
  const dir = await Deno.makeTempDir();
  const { url, ranges, server } = fileServer(DATA, { cutAfter: 65536 });
  try {
    const dest = `${dir}/model.gguf`;
    const err = await downloadFile(url, dest, { sha256: DATA_SHA, retries: 0 }).catch((e) => e);
    assert.ok(err instanceof DownloadError, String(err));
    assert.equal(err.code, "interrupted");
    assert.match(err.message, /resume/);
    const kept = (await Deno.stat(`${dest}.part`)).size;
    assert.ok(kept > 0 && kept < DATA.length, `part has ${kept} bytes`);

    const result = await downloadFile(url, dest, { sha256: DATA_SHA });
    assert.deepEqual(ranges, [null, `bytes=${kept}-`]);
    assert.equal(result.resumedFrom, kept);
    assert.deepEqual(await Deno.readFile(dest), DATA);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: retries a cut connection by itself, resuming", async () => {
  const dir = await Deno.makeTempDir();
  const { url, ranges, server } = fileServer(DATA, { cutAfter: 65536, cutTimes: 2 });
  try {
    const dest = `${dir}/model.gguf`;
    const result = await downloadFile(url, dest, { sha256: DATA_SHA, size: DATA.length });
    assert.equal(ranges.length, 3);
    assert.equal(ranges[0], null);
    assert.match(ranges[2]!, /^bytes=\d+-$/);
    assert.equal(result.sha256, DATA_SHA);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a complete .part left behind is verified and renamed, no request", async () => {
  const dir = await Deno.makeTempDir();
  const { url, ranges, server } = fileServer(DATA);
  try {
    const dest = `${dir}/model.gguf`;
    await Deno.writeFile(`${dest}.part`, DATA);
    const result = await downloadFile(url, dest, { sha256: DATA_SHA, size: DATA.length });
    assert.deepEqual(ranges, []);
    assert.equal(result.sha256, DATA_SHA);
    assert.equal(await exists(`${dest}.part`), false);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a server that ignores Range restarts the file from byte 0", async () => {
  const dir = await Deno.makeTempDir();
  const { url, ranges, server } = fileServer(DATA, { ignoreRange: true });
  try {
    const dest = `${dir}/model.gguf`;
    // Garbage in the part: appending the full body to it would break the hash.
    await Deno.writeFile(`${dest}.part`, new Uint8Array(5000).fill(7));
    const result = await downloadFile(url, dest, { sha256: DATA_SHA, size: DATA.length });
    assert.deepEqual(ranges, ["bytes=5000-"]);
    assert.equal(result.resumedFrom, 0);
    assert.deepEqual(await Deno.readFile(dest), DATA);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a part longer than the file (416) starts over", async () => {
  const dir = await Deno.makeTempDir();
  const { url, ranges, server } = fileServer(DATA);
  try {
    const dest = `${dir}/model.gguf`;
    await Deno.writeFile(`${dest}.part`, new Uint8Array(DATA.length + 10));
    const result = await downloadFile(url, dest, { sha256: DATA_SHA });
    assert.deepEqual(ranges, [`bytes=${DATA.length + 10}-`, null]);
    assert.equal(result.sha256, DATA_SHA);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a sha256 mismatch deletes the file and names both hashes", async () => {
  const dir = await Deno.makeTempDir();
  const { url, server } = fileServer(DATA);
  try {
    const dest = `${dir}/model.gguf`;
    const wrong = "0".repeat(64);
    const err = await downloadFile(url, dest, { sha256: wrong }).catch((e) => e);
    assert.ok(err instanceof DownloadError, String(err));
    assert.equal(err.code, "hash");
    assert.ok(err.message.includes(`expected ${wrong}`), err.message);
    assert.ok(err.message.includes(`got ${DATA_SHA}`), err.message);
    assert.ok(err.message.includes(url), err.message);
    assert.equal(await exists(dest), false);
    assert.equal(await exists(`${dest}.part`), false);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a size the server contradicts fails before writing", async () => {
  const dir = await Deno.makeTempDir();
  const { url, server } = fileServer(DATA);
  try {
    const err = await downloadFile(url, `${dir}/m.gguf`, { size: 123 }).catch((e) => e);
    assert.ok(err instanceof DownloadError, String(err));
    assert.equal(err.code, "size");
    assert.match(err.message, /300000 bytes .* but 123 bytes were expected/);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: HTTP 404 names the status and the URL", async () => {
  const dir = await Deno.makeTempDir();
  const { url, server } = fileServer(DATA, { status: 404 });
  try {
    const err = await downloadFile(url, `${dir}/m.gguf`).catch((e) => e);
    assert.ok(err instanceof DownloadError, String(err));
    assert.equal(err.code, "http");
    assert.ok(err.message.includes("HTTP 404"), err.message);
    assert.ok(err.message.includes(url), err.message);
    assert.equal(await exists(`${dir}/m.gguf.part`), false);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: connection refused is a network error naming the URL", async () => {
  const dir = await Deno.makeTempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  try {
    const url = `http://127.0.0.1:${port}/m.gguf`;
    const err = await downloadFile(url, `${dir}/m.gguf`).catch((e) => e);
    assert.ok(err instanceof DownloadError, String(err));
    assert.equal(err.code, "network");
    assert.ok(err.message.includes(url), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
