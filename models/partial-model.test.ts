import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { GgufError, openGguf } from "../inference/mod.ts";
import type { CatalogEntry } from "./catalog.ts";
import { DownloadError, IntegrityError } from "./download.ts";
import { openPartialModel, type PartialModelOptions, type RangeProgress } from "./partial-model.ts";
import { requestRange } from "./range-source.ts";
import { readSidecar } from "./sparse-file.ts";
import { coalesceRanges, missingRanges, normalizeRanges } from "./byte-ranges.ts";
import { rangeServer, type RangeServerOptions } from "../tests/support/range-server.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const DATA = await Deno.readFile(STORIES);
const SHA = createHash("sha256").update(DATA).digest("hex");
const HEADER = await openGguf(STORIES);
const noFetch: typeof fetch = () => Promise.reject(new Error("the test expected no request"));

function entry(url: string, sha256: string | null = SHA): CatalogEntry {
  return {
    id: "tiny",
    name: "tiny",
    url,
    sha256,
    size: DATA.length,
    architecture: "llama",
    quantization: "F32",
  };
}

/** A temporary GROVE_HOME and a server of stories260K; `run` gets options that reach both. */
async function withServer(
  serverOptions: RangeServerOptions,
  run: (
    s: ReturnType<typeof rangeServer>,
    options: PartialModelOptions & { groveHome: string },
  ) => Promise<void>,
) {
  const home = await Deno.makeTempDir();
  const server = rangeServer(DATA, serverOptions);
  try {
    await run(server, {
      groveHome: home,
      modelPath: [],
      catalog: [entry(server.url)],
      hfEndpoint: server.base,
    });
  } finally {
    await server.close();
    await Deno.remove(home, { recursive: true });
  }
}

const rangeOf = (header: string | null) => {
  const m = /^bytes=(\d+)-(\d+)$/.exec(header ?? "");
  assert.ok(m, `not a byte range: ${header}`);
  return [Number(m[1]), Number(m[2]) + 1];
};

Deno.test("byte ranges: normalize, subtract and coalesce", () => {
  assert.deepEqual(normalizeRanges([[5, 9], [0, 2], [2, 3], [8, 12], [4, 4]]), [[0, 3], [5, 12]]);
  assert.deepEqual(missingRanges([[0, 20]], [[2, 4], [6, 8], [18, 30]]), [[0, 2], [4, 6], [8, 18]]);
  assert.deepEqual(missingRanges([[3, 7]], [[0, 10]]), []);
  assert.deepEqual(coalesceRanges([[0, 2], [5, 6], [20, 21]], 3), [[0, 6], [20, 21]]);
});

Deno.test("openPartialModel: the header grows from a small first request until it parses", async () => {
  await withServer({}, async (server, options) => {
    const partial = await openPartialModel("tiny", { ...options, firstBytes: 1024 });
    assert.ok(partial, "a server that answers ranges gives a partial model");
    assert.equal(partial.path, `${options.groveHome}/models/model.gguf.partial`);
    assert.equal(partial.sha256, SHA);
    assert.equal(partial.size, DATA.length);
    // 1 KiB, then the prefix doubled each time, each request only what is missing.
    assert.deepEqual(server.ranges.map(rangeOf), [
      [0, 1024],
      [1024, 2048],
      [2048, 4096],
      [4096, 8192],
      [8192, 16384],
    ]);
    assert.ok(HEADER.dataOffset <= 16384 && HEADER.dataOffset > 8192);
    assert.deepEqual(partial.header.metadata, HEADER.metadata);
    assert.deepEqual(partial.header.tensors, HEADER.tensors);
    assert.deepEqual(partial.present(), [[0, 16384]]);
    assert.equal(server.bytesSent(), 16384);
    assert.ok(server.sent.every((n) => n <= 1), "no byte sent twice");
    // The sparse file has the model's length; the sidecar says what of it is there.
    assert.equal((await Deno.stat(partial.path)).size, DATA.length);
    const sidecar = await readSidecar(partial.path);
    assert.deepEqual(sidecar, {
      url: server.url,
      size: DATA.length,
      sha256: SHA,
      ranges: [[0, 16384]],
    });
  });
});

Deno.test("openPartialModel: a header cut short is fetched further, not read as zeros", async () => {
  // Find a cut where the bytes before it, zeros after, parse as a GGUF with other tensors.
  const dir = await Deno.makeTempDir();
  let cut = 0;
  try {
    for (let c = HEADER.dataOffset - 1; c > HEADER.dataOffset - 400 && cut === 0; c--) {
      const bytes = new Uint8Array(DATA.length);
      bytes.set(DATA.subarray(0, c));
      await Deno.writeFile(`${dir}/cut.gguf`, bytes);
      const parsed = await openGguf(`${dir}/cut.gguf`).catch(() => undefined);
      if (parsed && parsed.tensors.some((t) => t.name === "")) cut = c;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(cut > 0, "some cut of stories260K's header parses with zeros after it");
  await withServer({}, async (server, options) => {
    const partial = await openPartialModel("tiny", { ...options, firstBytes: cut });
    assert.ok(partial);
    assert.deepEqual(partial.header.tensors, HEADER.tensors);
    assert.deepEqual(server.ranges.map(rangeOf), [[0, cut], [cut, 2 * cut]]);
  });
});

Deno.test("openPartialModel: undefined where the whole file is the way", async () => {
  // The server ignores Range: it answers 200 with the whole file.
  await withServer({ ignoreRange: true }, async (server, options) => {
    assert.equal(await openPartialModel("tiny", options), undefined);
    assert.equal(server.ranges.length, 1);
    await assert.rejects(Deno.stat(`${options.groveHome}/models/model.gguf.partial`));
  });
  // hf:// whose server states no sha256: the split needs the identity.
  await withServer({}, async (server, options) => {
    assert.equal(await openPartialModel("hf://o/r/model.gguf", options), undefined);
    assert.equal(server.ranges.length, 1);
  });
  // A local path, the model already on disk, or downloads off: no request at all.
  const home = await Deno.makeTempDir();
  try {
    const quiet = { groveHome: home, fetch: noFetch, catalog: [entry("https://x.invalid/m.gguf")] };
    assert.equal(await openPartialModel(STORIES, quiet), undefined);
    assert.equal(await openPartialModel("tiny", { ...quiet, offline: true }), undefined);
    await Deno.mkdir(`${home}/models`);
    await Deno.writeFile(`${home}/models/m.gguf`, DATA);
    assert.equal(await openPartialModel("tiny", { ...quiet, modelPath: [] }), undefined);
    // An unreachable server: resolveModel, next, says so in its words.
    const refused: typeof fetch = () => Promise.reject(new TypeError("connection refused"));
    const elsewhere = { ...quiet, modelPath: [], fetch: refused, groveHome: `${home}/other` };
    assert.equal(await openPartialModel("tiny", elsewhere), undefined);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("openPartialModel: hf:// takes the sha256 Hugging Face states on its redirect", async () => {
  const headers = { "x-linked-etag": `"${SHA}"`, etag: '"0123abcd"' };
  await withServer({ redirect: true, headers }, async (server, options) => {
    const partial = await openPartialModel("hf://acme/tiny-GGUF/q/model.gguf@v2", {
      ...options,
      firstBytes: 16384,
    });
    assert.ok(partial);
    assert.equal(partial.sha256, SHA);
    assert.equal(partial.url, `${server.base}/acme/tiny-GGUF/resolve/v2/q/model.gguf`);
    assert.equal(
      partial.path,
      `${options.groveHome}/models/hf/acme/tiny-GGUF/v2/q/model.gguf.partial`,
    );
    assert.deepEqual(partial.header.tensors, HEADER.tensors);
  });
  // An etag alone (no redirect) that is a sha256 counts too.
  await withServer({ headers: { etag: `W/"${SHA}"` } }, async (_server, options) => {
    assert.equal((await openPartialModel("hf://o/r/model.gguf", options))?.sha256, SHA);
  });
});

Deno.test("openPartialModel: a server stating another sha256 than the catalog is refused", async () => {
  const other = "ab".repeat(32);
  await withServer({ headers: { "x-linked-etag": other } }, async (_server, options) => {
    const err = await openPartialModel("tiny", options).catch((e) => e);
    assert.ok(err instanceof IntegrityError, String(err));
    assert.ok(err.message.includes(other) && err.message.includes(SHA), err.message);
  });
});

Deno.test("requestRange: redirects keep each hop's headers and never leave https for http", async () => {
  const hops: string[] = [];
  const fake: typeof fetch = (input, init) => {
    const url = String(input);
    hops.push(`${url} ${new Headers(init?.headers).get("range")}`);
    if (url === "https://hub.test/f") {
      return Promise.resolve(
        new Response(null, { status: 302, headers: { location: "/cdn/f", "x-linked-etag": SHA } }),
      );
    }
    if (url === "https://hub.test/cdn/f") {
      return Promise.resolve(
        new Response(null, { status: 302, headers: { location: "http://plain.test/f" } }),
      );
    }
    return Promise.reject(new Error(`unexpected ${url}`));
  };
  const err = await requestRange("https://hub.test/f", [0, 10], { fetch: fake }).catch((e) => e);
  assert.ok(err instanceof DownloadError && err.code === "http", String(err));
  assert.match(err.message, /not https/);
  assert.deepEqual(hops, ["https://hub.test/f bytes=0-9", "https://hub.test/cdn/f bytes=0-9"]);
});

Deno.test("ensure: only missing bytes, merged, in few requests, with progress", async () => {
  await withServer({}, async (server, options) => {
    const partial = await openPartialModel("tiny", { ...options, firstBytes: 16384 });
    assert.ok(partial);
    const events: RangeProgress[] = [];
    const want: [number, number][] = [[10_000, 20_000], [30_000, 40_000], [600_000, 700_000]];
    const fetched = await partial.ensure(want, { onProgress: (p) => events.push({ ...p }) });
    // [0, 16384) was there; 16384..20000 and 30000..40000 are 10 KiB apart: one request.
    assert.deepEqual(server.ranges.slice(1).map(rangeOf), [[16384, 40_000], [600_000, 700_000]]);
    assert.equal(fetched, 40_000 - 16384 + 100_000);
    assert.deepEqual(events[0], { fetched: 0, total: fetched, done: false });
    assert.deepEqual(events.at(-1), { fetched, total: fetched, done: true });
    assert.ok(events.length > 3, "progress while the bytes arrive");
    assert.deepEqual(partial.present(), [[0, 40_000], [600_000, 700_000]]);
    const file = await Deno.readFile(partial.path);
    assert.deepEqual(file.subarray(600_000, 700_000), DATA.subarray(600_000, 700_000));
    assert.equal(await partial.ensure(want), 0, "nothing fetched twice");
    assert.equal(server.ranges.length, 3);
    await assert.rejects(partial.ensure([[0, DATA.length + 1]]), RangeError);
  });
});

Deno.test("ensure: a cut connection leaves a true sidecar and the next ensure resumes", async () => {
  // Response 1 (the first after the header) is cut after 50,000 bytes.
  await withServer({ cuts: new Map([[1, 50_000]]) }, async (server, options) => {
    const partial = await openPartialModel("tiny", { ...options, firstBytes: 16384, retries: 0 });
    assert.ok(partial);
    const want: [number, number][] = [[200_000, 400_000]];
    const err = await partial.ensure(want).catch((e) => e);
    assert.ok(err instanceof DownloadError && err.code === "interrupted", String(err));
    const sidecar = await readSidecar(partial.path);
    assert.ok(sidecar);
    const got = sidecar.ranges.find(([s]) => s === 200_000);
    assert.ok(got && got[1] > 200_000 && got[1] <= 250_000, JSON.stringify(sidecar.ranges));
    let file = await Deno.readFile(partial.path);
    assert.deepEqual(file.subarray(200_000, got[1]), DATA.subarray(200_000, got[1]));

    // A new process: it reads the sidecar, probes one byte and fetches only the rest.
    const again = await openPartialModel("tiny", { ...options, firstBytes: 16384 });
    assert.ok(again);
    assert.deepEqual(again.present(), sidecar.ranges);
    assert.equal(await again.ensure(want), 400_000 - got[1]);
    assert.deepEqual(server.ranges.slice(2).map(rangeOf), [[0, 1], [got[1], 400_000]]);
    file = await Deno.readFile(again.path);
    assert.deepEqual(file.subarray(200_000, 400_000), DATA.subarray(200_000, 400_000));
    assert.ok(server.sent.every((n, i) => n <= 1 || i === 0), "no byte but the probe's sent twice");
  });
});

Deno.test("ensure: a cut connection is resumed within the same ensure while tries remain", async () => {
  await withServer({ cuts: new Map([[1, 20_000], [2, 30_000]]) }, async (server, options) => {
    const partial = await openPartialModel("tiny", { ...options, firstBytes: 16384 });
    assert.ok(partial);
    assert.equal(await partial.ensure([[100_000, 300_000]]), 200_000);
    const [first, second, third] = server.ranges.slice(1).map(rangeOf);
    assert.deepEqual(first, [100_000, 300_000]);
    assert.equal(second[0], 120_000);
    assert.equal(third[0], 150_000);
    assert.ok(server.sent.every((n) => n <= 1), "no byte sent twice");
    const file = await Deno.readFile(partial.path);
    assert.deepEqual(file.subarray(100_000, 300_000), DATA.subarray(100_000, 300_000));
  });
});

Deno.test("openPartialModel: a sidecar of another file is not trusted", async () => {
  await withServer({}, async (server, options) => {
    const partial = await openPartialModel("tiny", { ...options, firstBytes: 16384 });
    assert.ok(partial);
    await partial.ensure([[0, 100_000]]);
    // The catalog now names another hash (and the server states none): start over.
    const other = "cd".repeat(32);
    const next = await openPartialModel("tiny", {
      ...options,
      catalog: [entry(server.url, other)],
      firstBytes: 16384,
    });
    assert.ok(next);
    assert.equal(next.sha256, other);
    assert.deepEqual(next.present(), [[0, 16384]]);
    assert.deepEqual(server.ranges.slice(-2).map(rangeOf), [[0, 1], [1, 16384]]);
  });
});

Deno.test("openPartialModel: a file that is no GGUF is refused at its first bytes", async () => {
  const home = await Deno.makeTempDir();
  const junk = new Uint8Array(1 << 20).fill(7);
  const server = rangeServer(junk);
  try {
    const catalog = [{ ...entry(server.url), size: junk.length }];
    const err = await openPartialModel("tiny", {
      groveHome: home,
      modelPath: [],
      catalog,
      firstBytes: 4096,
    })
      .catch((e) => e);
    assert.ok(err instanceof GgufError, String(err));
    assert.match(err.message, /not a GGUF file/);
    assert.equal(server.ranges.length, 1);
  } finally {
    await server.close();
    await Deno.remove(home, { recursive: true });
  }
});
