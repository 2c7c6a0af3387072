import assert from "node:assert/strict";
import { encodeFrame, readFrames } from "./framing.ts";

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(source: AsyncIterable<Uint8Array>, max = 1 << 20): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of readFrames(source, max)) out.push(v);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("framing: a varint length prefix precedes the UTF-8 JSON", () => {
  assert.deepEqual(
    encodeFrame({ a: 1 }),
    new Uint8Array([7, ...new TextEncoder().encode('{"a":1}')]),
  );
  const big = encodeFrame("x".repeat(300)); // 302 bytes of JSON: varint 0xae 0x02
  assert.deepEqual([...big.subarray(0, 2)], [0xae, 0x02]);
  assert.equal(big.length, 304);
  assert.throws(() => encodeFrame(undefined), /not JSON-serializable/);
});

Deno.test("framing: frames split and merged across chunks come out whole and in order", async () => {
  const msgs = [{ type: "token", text: "héllo" }, [1, 2, 3], "x".repeat(1000), null];
  const bytes = concat(...msgs.map(encodeFrame));
  assert.deepEqual(await collect(chunks(bytes)), msgs);
  // One byte at a time.
  const single = [...bytes].map((b) => new Uint8Array([b]));
  assert.deepEqual(await collect(chunks(...single)), msgs);
});

Deno.test("framing: Uint8ArrayList-like chunks (with subarray()) are accepted", async () => {
  const list = { subarray: () => encodeFrame({ ok: true }) };
  async function* src() {
    yield list;
  }
  const out: unknown[] = [];
  for await (const v of readFrames(src(), 100)) out.push(v);
  assert.deepEqual(out, [{ ok: true }]);
});

Deno.test("framing: an oversize frame is refused from its prefix alone", async () => {
  const frame = encodeFrame("x".repeat(200));
  // Only the prefix arrives: the error must not wait for the body.
  await assert.rejects(
    collect(chunks(frame.subarray(0, 2)), 100),
    /frame 0 is 202 bytes, over the 100-byte limit/,
  );
});

Deno.test("framing: garbage, truncation and runaway prefixes give clear errors", async () => {
  const notJson = concat(new Uint8Array([3]), new TextEncoder().encode("{x}"));
  await assert.rejects(
    collect(chunks(encodeFrame(1), notJson)),
    /frame 1 \(3 bytes\) is not UTF-8 JSON/,
  );
  const badUtf8 = new Uint8Array([2, 0xff, 0xfe]);
  await assert.rejects(collect(chunks(badUtf8)), /not UTF-8 JSON/);
  const cut = encodeFrame({ a: "long enough" }).subarray(0, 5);
  await assert.rejects(collect(chunks(cut)), /stream ended inside frame 0/);
  const runaway = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  await assert.rejects(collect(chunks(runaway), Number.MAX_SAFE_INTEGER), /longer than 5 bytes/);
  assert.deepEqual(await collect(chunks()), []);
});
