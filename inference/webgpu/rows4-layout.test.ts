import assert from "node:assert/strict";
import { GgmlType } from "../ggml-type.ts";
import { bytesFor } from "../quant/mod.ts";
import { repackRows4, rows4Half, rows4LayoutSupports, rows4Texels } from "./rows4-layout.ts";

/** Rows whose every byte says where it came from: byte i of row r is (7r + i) mod 251. */
function labelledRows(type: GgmlType, rows: number, cols: number): Uint8Array {
  const rowBytes = bytesFor(type, cols);
  const data = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < rowBytes; i++) data[r * rowBytes + i] = (7 * r + i) % 251;
  }
  return data;
}

function wordAt(data: Uint8Array, at: number): number {
  return new DataView(data.buffer, data.byteOffset).getUint32(at, true);
}

function u16At(data: Uint8Array, at: number): number {
  return data[at] | (data[at + 1] << 8);
}

Deno.test("rows4 Q4_0: scale texels join two blocks' d, then each block's nibble words", () => {
  const cols = 256;
  const rows = 6; // two texture rows, the second half empty
  const data = labelledRows(GgmlType.Q4_0, rows, cols);
  const rowBytes = bytesFor(GgmlType.Q4_0, cols);
  const texels = rows4Texels(cols);
  assert.equal(texels, 36);
  const out = repackRows4(GgmlType.Q4_0, data, cols, 0, rows);
  assert.equal(out.length, 2 * texels * 4);
  for (let r = 0; r < rows; r++) {
    const row = r * rowBytes;
    const texel = (t: number): number => out[Math.floor(r / 4) * texels * 4 + 4 * t + (r % 4)];
    for (let p = 0; p < cols / 64; p++) {
      const b = row + 36 * p;
      assert.equal(texel(9 * p), (u16At(data, b) | (u16At(data, b + 18) << 16)) >>> 0);
      for (let k = 0; k < 4; k++) {
        assert.equal(
          texel(9 * p + 1 + k),
          wordAt(data, b + 2 + 4 * k),
          `row ${r} pair ${p} word ${k}`,
        );
        assert.equal(texel(9 * p + 5 + k), wordAt(data, b + 20 + 4 * k));
      }
    }
  }
  // Rows 6 and 7 do not exist: their components stay zero.
  for (let t = 0; t < texels; t++) {
    assert.equal(out[texels * 4 + 4 * t + 2], 0);
    assert.equal(out[texels * 4 + 4 * t + 3], 0);
  }
});

Deno.test("rows4 Q4_K: super-blocks keep their word order, from any first row", () => {
  const cols = 512;
  const data = labelledRows(GgmlType.Q4_K, 9, cols);
  const rowBytes = bytesFor(GgmlType.Q4_K, cols);
  const texels = rows4Texels(cols);
  const out = repackRows4(GgmlType.Q4_K, data, cols, 5, 4); // rows 5..8
  for (let r = 0; r < 4; r++) {
    for (let t = 0; t < texels; t++) {
      assert.equal(out[4 * t + r], wordAt(data, (5 + r) * rowBytes + 4 * t));
    }
  }
});

Deno.test("rows4 layout: supported shapes, halves and clear errors", () => {
  assert.ok(rows4LayoutSupports(GgmlType.Q4_0, 2048));
  assert.ok(!rows4LayoutSupports(GgmlType.Q4_0, 96));
  assert.ok(!rows4LayoutSupports(GgmlType.Q8_0, 2048));
  assert.equal(rows4Half(GgmlType.Q4_0), 16);
  assert.equal(rows4Half(GgmlType.Q4_K), 32);
  assert.throws(() => rows4Half(GgmlType.F16), /rows4 layout has no F16/);
  assert.throws(
    () => repackRows4(GgmlType.Q4_0, new Uint8Array(100), 256, 0, 1),
    /1 rows from row 0 need more than 100 bytes/,
  );
});
