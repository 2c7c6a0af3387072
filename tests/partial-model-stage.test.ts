/**
 * A split stage of a model that is not on disk (issue 11): the model is served over HTTP with
 * Range support, each stage fetches only its own tensors' bytes into the partial file, and the
 * stages loaded from that file give exactly the whole engine's logits.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createCpuEngine, modelConfigOf, stageByteRanges } from "../inference/mod.ts";
import { openPartialModel, type RangeProgress } from "../models/mod.ts";
import { STORIES } from "./support/fixtures.ts";
import { rangeServer } from "./support/range-server.ts";
import { CHAIN_CTX, loadStages, runChain, writeSplitTestModel } from "./support/stage-chain.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-partial-stage-" });
const Q4K = `${dir}/test-llama-q4_k-6.gguf`;
await writeSplitTestModel(Q4K);

function assertSame(label: string, got: Float32Array, want: Float32Array) {
  assert.equal(got.length, want.length, label);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${label}: logit ${i} is ${got[i]}, whole ${want[i]}`);
  }
}

const rangeBytes = (ranges: [number, number][]) => ranges.reduce((n, [s, e]) => n + e - s, 0);

const MODELS: [string, string, [number, number][]][] = [
  ["stories260K", STORIES, [[0, 2], [2, 5]]],
  ["a generated 6-layer Q4_K model", Q4K, [[0, 2], [2, 4], [4, 6]]],
];

for (const [name, path, ranges] of MODELS) {
  Deno.test(`partial model: ${name}'s stages fetch only their bytes and give the whole logits`, async () => {
    const data = await Deno.readFile(path);
    const sha256 = createHash("sha256").update(data).digest("hex");
    const server = rangeServer(data);
    const home = await Deno.makeTempDir();
    const catalog = [{
      id: "m",
      name: "m",
      url: server.url,
      sha256,
      size: data.length,
      architecture: "llama",
      quantization: "test",
    }];
    try {
      const partial = await openPartialModel("m", {
        groveHome: home,
        modelPath: [],
        catalog,
        firstBytes: 16384,
      });
      assert.ok(partial, "the server answers ranges");
      const header = partial.header;
      const config = modelConfigOf(header);
      assert.ok(server.bytesSent() < 2 * header.dataOffset + 16384, "the header alone so far");

      for (const [start, end] of ranges) {
        const before = server.bytesSent();
        const want = stageByteRanges(header, config, start, end);
        const events: RangeProgress[] = [];
        const fetched = await partial.ensure(want, { onProgress: (p) => events.push(p) });
        assert.equal(server.bytesSent() - before, fetched);
        assert.ok(events.at(-1)?.done && events.at(-1)?.fetched === fetched);
        // The stage's tensors, never more than its share (the header is fetched once).
        assert.ok(
          fetched <= rangeBytes(want),
          `stage [${start}, ${end}) fetched ${fetched} of its ${rangeBytes(want)} bytes`,
        );
        assert.ok(fetched < 0.6 * data.length, `stage [${start}, ${end}): ${fetched} bytes`);
      }
      // Together: the file, each byte once (no tied head here, nor in stories260K's file).
      assert.equal(server.bytesSent(), data.length);
      assert.ok(server.sent.every((n) => n === 1), "every byte sent exactly once");

      const stages = await loadStages(partial.path, ranges);
      const engine = await createCpuEngine({ path, ctxSize: CHAIN_CTX });
      try {
        assert.equal(await runChain(stages, engine, 6, assertSame), 10);
      } finally {
        stages.forEach((s) => s.close());
      }
    } finally {
      await server.close();
      await Deno.remove(home, { recursive: true });
    }
  });
}

Deno.test("partial model: a stage loaded before the rest is fetched reads only fetched bytes", async () => {
  const data = await Deno.readFile(STORIES);
  const server = rangeServer(data);
  const home = await Deno.makeTempDir();
  const sha256 = createHash("sha256").update(data).digest("hex");
  try {
    const partial = await openPartialModel("hf://o/r/stories260K.gguf", {
      groveHome: home,
      modelPath: [],
      hfEndpoint: server.base,
      firstBytes: 16384,
      fetch: (input, init) =>
        // Hugging Face names an LFS file's sha256 in its etag.
        fetch(input, init).then((r) => {
          const headers = new Headers(r.headers);
          headers.set("etag", `"${sha256}"`);
          return new Response(r.body, { status: r.status, headers });
        }),
    });
    assert.ok(partial);
    const config = modelConfigOf(partial.header);
    const want = stageByteRanges(partial.header, config, 0, 2);
    await partial.ensure(want);
    // The header's 16 KiB lie within the stage's first range: the stage's bytes and no more.
    assert.equal(server.bytesSent(), rangeBytes(want));
    assert.ok(server.bytesSent() < 0.45 * data.length, `${server.bytesSent()} bytes`);
    // Stage 0 from the partial file and from the whole file agree on a forward.
    const [fromPartial] = await loadStages(partial.path, [[0, 2]]);
    const [fromWhole] = await loadStages(STORIES, [[0, 2]]);
    try {
      const outs = [];
      for (const stage of [fromPartial, fromWhole]) {
        const slot = stage.acquire()!;
        const hidden = await stage.embed([1, 274, 287, 269]);
        await stage.forward([{ slot, count: 4 }], hidden);
        outs.push(hidden);
      }
      assertSame("stage [0, 2) hidden states", outs[0], outs[1]);
      assert.ok(fromPartial.info.bytesRead < 0.6 * data.length);
    } finally {
      fromPartial.close();
      fromWhole.close();
    }
  } finally {
    await server.close();
    await Deno.remove(home, { recursive: true });
  }
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
