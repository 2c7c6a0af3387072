import assert from "node:assert/strict";
import { CATALOG } from "./catalog.ts";
import { pullModel, type PullProgress } from "./installed.ts";
import { etaSeconds } from "./progress.ts";
import { STORIES } from "../tests/support/fixtures.ts";

Deno.test("etaSeconds: what is left over the rate; null without a total or a rate", () => {
  assert.equal(etaSeconds(25, 100, 5), 15);
  assert.equal(etaSeconds(100, 100, 5), 0);
  assert.equal(etaSeconds(10, null, 5), null);
  assert.equal(etaSeconds(10, undefined, 5), null);
  assert.equal(etaSeconds(10, 100, 0), null);
});

Deno.test("pullModel: each progress line carries eta, the seconds left at the line's rate", async () => {
  const bytes = await Deno.readFile(STORIES);
  const chunks = 8;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    // In pieces, each a moment after the last: the download takes long enough to have a rate.
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (i === chunks) return controller.close();
        await new Promise((r) => setTimeout(r, 15));
        const size = Math.ceil(bytes.length / chunks);
        controller.enqueue(bytes.subarray(i * size, (i + 1) * size));
        i++;
      },
    });
    return new Response(body, { headers: { "content-length": String(bytes.length) } });
  });
  const home = await Deno.makeTempDir({ prefix: "grove-pull-eta-" });
  try {
    const catalog = [{ ...CATALOG[0], url: `http://127.0.0.1:${server.addr.port}/s.gguf` }];
    const lines: PullProgress[] = [];
    await pullModel("stories260K", {
      groveHome: home,
      modelPath: [],
      catalog,
      progressEveryMs: 0,
      onProgress: (p) => lines.push(p),
    });
    assert.ok(lines.length >= 2, `${lines.length} progress lines`);
    for (const line of lines) {
      assert.ok("eta" in line, JSON.stringify(line));
      const expected = line.rate > 0 && line.total !== null
        ? Math.ceil((line.total - line.bytes) / line.rate)
        : null;
      assert.equal(line.eta, expected, JSON.stringify(line));
    }
    const last = lines.at(-1)!;
    assert.equal(last.bytes, bytes.length);
    assert.ok(last.rate > 0);
    assert.equal(last.eta, 0);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});
