import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { relative } from "node:path";
import { CATALOG, type CatalogEntry } from "./catalog.ts";
import { IntegrityError, readHashStore } from "./download.ts";
import {
  expandHome,
  formatModelRef,
  hfUrl,
  modelPathDirs,
  ModelRefError,
  ModelResolveError,
  parseModelRef,
  resolveModel,
} from "./resolve.ts";
import { MODELS_DIR as FIXTURES } from "../tests/support/fixtures.ts";

const quiet = () => {};
const noFetch: typeof fetch = () => Promise.reject(new Error("the test expected no download"));

Deno.test("parseModelRef: catalog ids, hf references and local paths", () => {
  assert.deepEqual(parseModelRef("stories260K"), { kind: "catalog", id: "stories260K" });
  assert.deepEqual(parseModelRef(" Stories260k "), { kind: "catalog", id: "stories260K" });
  assert.deepEqual(parseModelRef("hf://Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf"), {
    kind: "hf",
    owner: "Qwen",
    repo: "Qwen3-0.6B-GGUF",
    path: "Qwen3-0.6B-Q8_0.gguf",
    revision: "main",
  });
  assert.deepEqual(parseModelRef("hf://o/r/sub/dir/x.gguf@v1.0"), {
    kind: "hf",
    owner: "o",
    repo: "r",
    path: "sub/dir/x.gguf",
    revision: "v1.0",
  });
  for (const path of ["./m.gguf", "~/models/m.gguf", "m.gguf", "/abs/model", "dir/model.bin"]) {
    assert.deepEqual(parseModelRef(path), { kind: "path", path });
  }
  assert.equal(formatModelRef(parseModelRef("hf://o/r/x.gguf@abc")), "hf://o/r/x.gguf@abc");
  assert.equal(formatModelRef(parseModelRef("hf://o/r/x.gguf")), "hf://o/r/x.gguf");
});

Deno.test("parseModelRef: clear errors for unknown and malformed references", () => {
  const err = (ref: string) => {
    try {
      parseModelRef(ref);
    } catch (e) {
      assert.ok(e instanceof ModelRefError, String(e));
      return e.message;
    }
    assert.fail(`parseModelRef(${ref}) should throw`);
  };
  const unknown = err("llama-70b");
  assert.match(unknown, /unknown model "llama-70b"/);
  for (const entry of CATALOG) assert.ok(unknown.includes(entry.id), unknown);
  assert.match(err("hf://owner/repo"), /needs an owner, a repo and a file path/);
  assert.match(err("hf://o/r/x.bin"), /must be a \.gguf/);
  assert.match(err("hf://o/r/x.gguf@"), /empty revision/);
  assert.match(err("hf://o/../x.gguf"), /bad segment "\.\."/);
  assert.match(err("https://huggingface.co/o/r/resolve/main/x.gguf"), /use hf:\/\//);
  assert.match(err(""), /empty model reference/);
});

Deno.test("hfUrl: a resolve URL with each part encoded", () => {
  const ref = parseModelRef("hf://o/r/sub/x y.gguf@refs/pr/1");
  assert.ok(ref.kind === "hf");
  assert.equal(hfUrl(ref), "https://huggingface.co/o/r/resolve/refs%2Fpr%2F1/sub/x%20y.gguf");
  assert.equal(
    hfUrl(ref, "http://127.0.0.1:9/"),
    "http://127.0.0.1:9/o/r/resolve/refs%2Fpr%2F1/sub/x%20y.gguf",
  );
});

Deno.test("modelPathDirs and expandHome: colon lists and ~", () => {
  const home = Deno.env.get("HOME")!;
  assert.deepEqual(modelPathDirs(":/a::~/b:"), ["/a", `${home}/b`]);
  assert.deepEqual(modelPathDirs(["/c"]), ["/c"]);
  assert.equal(expandHome("~"), home);
  assert.equal(expandHome("~/x.gguf"), `${home}/x.gguf`);
  assert.equal(expandHome("a/~/b"), "a/~/b");
});

Deno.test("resolveModel: finds stories260K in GROVE_MODEL_PATH and checks its hash", async () => {
  const home = await Deno.makeTempDir();
  try {
    const options = { groveHome: home, modelPath: `/nonexistent:${FIXTURES}`, fetch: noFetch };
    const found = await resolveModel("stories260K", options);
    assert.equal(found.path, `${FIXTURES}/stories260K.gguf`);
    assert.equal(found.entry?.id, "stories260K");
    assert.equal(found.downloaded, false);
    const store = await readHashStore(`${home}/models/hashes.json`);
    assert.equal(store.verified[found.path]?.sha256, CATALOG[0].sha256);
    assert.deepEqual(store.trusted, {}, "a catalog hash needs no trust on first use");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveModel: GROVE_MODEL_PATH from the environment", async () => {
  const home = await Deno.makeTempDir();
  const before = Deno.env.get("GROVE_MODEL_PATH");
  Deno.env.set("GROVE_MODEL_PATH", `/nonexistent:${FIXTURES}`);
  try {
    const found = await resolveModel("stories260K", { groveHome: home, fetch: noFetch });
    assert.equal(found.path, `${FIXTURES}/stories260K.gguf`);
  } finally {
    if (before === undefined) Deno.env.delete("GROVE_MODEL_PATH");
    else Deno.env.set("GROVE_MODEL_PATH", before);
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveModel: a same-sized file with other bytes fails the catalog hash", async () => {
  const home = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${home}/models`);
    await Deno.writeFile(`${home}/models/stories260K.gguf`, new Uint8Array(1185376));
    const err = await resolveModel("stories260K", {
      groveHome: home,
      modelPath: [],
      fetch: noFetch,
    })
      .catch((e) => e);
    assert.ok(err instanceof IntegrityError, String(err));
    assert.ok(err.message.includes(`expected ${CATALOG[0].sha256}`), err.message);
    assert.match(err.message, /from the catalog/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

// A server that hands out one file, counting the requests for it.
function serveFile(data: Uint8Array<ArrayBuffer>) {
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    paths.push(new URL(req.url).pathname);
    return new Response(data, { headers: { "content-length": String(data.length) } });
  });
  return { base: `http://127.0.0.1:${server.addr.port}`, paths, server };
}

const DATA: Uint8Array<ArrayBuffer> = new TextEncoder().encode("GGUF pretend bytes ".repeat(999));
const DATA_SHA = createHash("sha256").update(DATA).digest("hex");

function testEntry(url: string): CatalogEntry {
  return {
    id: "tiny",
    name: "tiny",
    url,
    sha256: null,
    size: null,
    architecture: "llama",
    quantization: "F32",
  };
}

Deno.test("resolveModel: downloads into $GROVE_HOME/models, trusting the first hash", async () => {
  const home = await Deno.makeTempDir();
  const { base, paths, server } = serveFile(DATA);
  try {
    const catalog = [testEntry(`${base}/files/tiny.gguf`)];
    const options = { groveHome: home, modelPath: [], catalog, onProgress: quiet };
    const first = await resolveModel("tiny", options);
    assert.equal(first.path, `${home}/models/tiny.gguf`);
    assert.equal(first.downloaded, true);
    assert.deepEqual(await Deno.readFile(first.path), DATA);
    const store = await readHashStore(`${home}/models/hashes.json`);
    assert.equal(store.trusted[`${base}/files/tiny.gguf`]?.sha256, DATA_SHA);

    const again = await resolveModel("tiny", { ...options, fetch: noFetch });
    assert.equal(again.path, first.path);
    assert.equal(again.downloaded, false);
    assert.equal(paths.length, 1);

    // Same size, other bytes, new mtime: the recorded hash catches it.
    const tampered = DATA.slice();
    tampered[0] ^= 1;
    await Deno.writeFile(first.path, tampered);
    await Deno.utime(first.path, new Date(), new Date(Date.now() + 5000));
    const err = await resolveModel("tiny", { ...options, fetch: noFetch }).catch((e) => e);
    assert.ok(err instanceof IntegrityError, String(err));
    assert.match(err.message, /recorded on first use/);
    assert.ok(err.message.includes(`expected ${DATA_SHA}`), err.message);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveModel: hf references download under models/hf/OWNER/REPO/REVISION", async () => {
  const home = await Deno.makeTempDir();
  const { base, paths, server } = serveFile(DATA);
  try {
    const options = { groveHome: home, modelPath: [], hfEndpoint: base, onProgress: quiet };
    const got = await resolveModel("hf://acme/tiny-GGUF/q/tiny.gguf@v2", options);
    assert.equal(got.path, `${home}/models/hf/acme/tiny-GGUF/v2/q/tiny.gguf`);
    assert.deepEqual(paths, ["/acme/tiny-GGUF/resolve/v2/q/tiny.gguf"]);
    assert.equal(got.entry, undefined);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveModel: hf references are found in GROVE_MODEL_PATH by file name", async () => {
  const home = await Deno.makeTempDir();
  try {
    const got = await resolveModel("hf://ggml-org/models/tinyllamas/stories260K.gguf", {
      groveHome: home,
      modelPath: [FIXTURES],
      fetch: noFetch,
    });
    assert.equal(got.path, `${FIXTURES}/stories260K.gguf`);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveModel: offline errors name the model, the URL and GROVE_MODEL_PATH", async () => {
  const home = await Deno.makeTempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // connection refused from now on
  try {
    const url = `http://127.0.0.1:${port}/tiny.gguf`;
    const options = {
      groveHome: home,
      modelPath: [],
      catalog: [testEntry(url)],
      onProgress: quiet,
    };
    for (const offline of [false, true]) {
      const err = await resolveModel("tiny", { ...options, offline }).catch((e) => e);
      assert.ok(err instanceof ModelResolveError, String(err));
      for (const part of ['model "tiny"', url, "GROVE_MODEL_PATH", `${home}/models`, "tiny.gguf"]) {
        assert.ok(err.message.includes(part), `missing ${part}: ${err.message}`);
      }
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveModel: local paths, relative or missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/m.gguf`;
    await Deno.writeFile(file, new Uint8Array(4));
    assert.equal((await resolveModel(file)).path, file);
    assert.equal((await resolveModel(relative(Deno.cwd(), file))).path, file);
    const missing = await resolveModel(`${dir}/nope.gguf`).catch((e) => e);
    assert.ok(missing instanceof ModelResolveError, String(missing));
    assert.match(missing.message, /model file not found: .*nope\.gguf/);
    const folder = await resolveModel(`${dir}/`).catch((e) => e);
    assert.match(folder.message, /is not a file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
