import * as assert from "node:assert/strict";
import { GgmlType } from "../../ggml-type.ts";
import { quantize } from "../../quant/mod.ts";
import {
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { product } from "../forward.ts";
import { destroyMatrix, type GpuMatrix, uploadMatrix } from "../weights.ts";
import { createMatMul } from "./matmul.ts";
import { createXWindows } from "./x-windows.ts";

const COLS = 512;
const ROWS = [256, 128, 64]; // q-, k- and v-like products of one x

/** A pass that counts the x copies dispatched into it (the COPY_X pipelines). */
function countingPass(pass: GPUComputePassEncoder) {
  let label = "";
  let copies = 0;
  const counted = new Proxy(pass, {
    get(target, key) {
      if (key === "setPipeline") {
        return (p: GPUComputePipeline) => (label = p.label, target.setPipeline(p));
      }
      if (key === "dispatchWorkgroups") {
        return (x: number) => (label.includes("COPY_X") && copies++, target.dispatchWorkgroups(x));
      }
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { pass: counted, copies: () => copies };
}

async function encoded(device: GPUDevice, encode: (pass: GPUComputePassEncoder) => void) {
  const enc = device.createCommandEncoder();
  const { pass, copies } = countingPass(enc.beginComputePass());
  encode(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return copies();
}

function matrices(device: GPUDevice): GpuMatrix[] {
  return ROWS.map((rows, i) => {
    const data = quantize(GgmlType.Q4_0, randomF32(rows * COLS, 10 + i), COLS);
    return uploadMatrix(device, { name: `m${i}`, type: GgmlType.Q4_0, rows, cols: COLS, data }, {
      layout: "rows4",
    });
  });
}

Deno.test("x windows: a group's products share one x copy a tile and equal unshared ones", async () => {
  const gpu = await createTestGpu();
  const { device } = gpu;
  const ms = matrices(device);
  const n = 40; // three tiles of 16
  const x = uploadF32(device, randomF32(n * COLS, 3));
  const windows = createXWindows(device, COLS);
  const mine = ms.map((m) => createF32(device, n * m.rows));
  const theirs = ms.map((m) => createF32(device, n * m.rows));
  const group = { generation: 0 };
  const shared = ms.map((m, i) => createMatMul(gpu, m, x, mine[i], { xShare: { windows, group } }));
  const alone = ms.map((m, i) => createMatMul(gpu, m, x, theirs[i]));
  try {
    const step = async (ops: typeof alone, bump: boolean) =>
      await encoded(device, (pass) => {
        if (bump) group.generation++;
        for (const op of ops) op.encode(pass, n);
      });
    assert.equal(await step(alone, false), 9, "three products of three tiles copy nine times");
    // The first copies each tile; the others start with the tile the window holds.
    assert.equal(await step(shared, true), 7);
    for (let i = 0; i < ms.length; i++) {
      const want = await readF32(device, theirs[i], n * ms[i].rows);
      assert.deepEqual(await readF32(device, mine[i], n * ms[i].rows), want, `product ${i}`);
    }
    // x rewritten: a new generation, and a follower encoded alone copies every tile again.
    device.queue.writeBuffer(x, 0, randomF32(n * COLS, 4) as Float32Array<ArrayBuffer>);
    assert.equal(await step([alone[1]], false), 3);
    assert.equal(await step([shared[1]], true), 3);
    const want = await readF32(device, theirs[1], n * ms[1].rows);
    assert.deepEqual(await readF32(device, mine[1], n * ms[1].rows), want);
  } finally {
    [...shared, ...alone].forEach((op) => op.destroy());
    [x, ...mine, ...theirs].forEach((b) => b.destroy());
    ms.forEach(destroyMatrix);
    windows.destroy();
  }
});

Deno.test("x windows: products after another reuse its copy, one token or many", async () => {
  const gpu = await createTestGpu();
  const { device } = gpu;
  const ms = matrices(device);
  const n = 40;
  const x = uploadF32(device, randomF32(n * COLS, 5));
  const windows = createXWindows(device, COLS);
  const mine = ms.map((m) => createF32(device, n * m.rows));
  const theirs = ms.map((m) => createF32(device, n * m.rows));
  const q = product(gpu, ms[0], x, mine[0], { windows });
  const k = product(gpu, ms[1], x, mine[1], { windows, after: q });
  const v = product(gpu, ms[2], x, mine[2], { windows, after: k });
  // Another group on the same windows, between steps: it must not leave q's copy looking valid.
  const other = product(gpu, ms[1], x, theirs[1], { windows });
  const alone = ms.map((m, i) => product(gpu, m, x, theirs[i], {}));
  try {
    for (const [tokens, copies] of [[1, 1], [n, 7], [1, 1]]) {
      device.queue.writeBuffer(x, 0, randomF32(n * COLS, 6 + tokens) as Float32Array<ArrayBuffer>);
      assert.equal(
        await encoded(device, (p) => [q, k, v].forEach((o) => o.encode(p, tokens))),
        copies,
      );
      await encoded(device, (p) => other.encode(p, tokens));
      await encoded(device, (p) => alone.forEach((o) => o.encode(p, tokens)));
      for (let i = 0; i < ms.length; i++) {
        const got = await readF32(device, mine[i], tokens * ms[i].rows);
        assert.deepEqual(
          got,
          await readF32(device, theirs[i], tokens * ms[i].rows),
          `${tokens}: ${i}`,
        );
      }
    }
    const elsewhere = createF32(device, COLS);
    assert.throws(
      () => product(gpu, ms[1], elsewhere, mine[1], { windows, after: q }),
      /m1: it does not read the x of the product it follows/,
    );
    elsewhere.destroy();
  } finally {
    [q, k, v, other, ...alone].forEach((p) => p.destroy());
    [x, ...mine, ...theirs].forEach((b) => b.destroy());
    ms.forEach(destroyMatrix);
    windows.destroy();
  }
});

Deno.test("x windows: a product wider than the windows keeps its own", async () => {
  const gpu = await createTestGpu();
  const { device } = gpu;
  const [m] = matrices(device);
  const n = 20;
  const x = uploadF32(device, randomF32(n * COLS, 8));
  const windows = createXWindows(device, COLS / 2);
  const [mine, theirs] = [createF32(device, n * m.rows), createF32(device, n * m.rows)];
  const group = { generation: 1 };
  const shared = createMatMul(gpu, m, x, mine, { xShare: { windows, group } });
  const alone = createMatMul(gpu, m, x, theirs);
  try {
    await encoded(device, (p) => (shared.encode(p, n), alone.encode(p, n)));
    assert.deepEqual(
      await readF32(device, mine, n * m.rows),
      await readF32(device, theirs, n * m.rows),
    );
    windows.window("a shape", [64]);
    assert.throws(() => windows.window("a shape", [128]), /x window a shape: asked for 128/);
  } finally {
    [shared, alone].forEach((op) => op.destroy());
    [x, mine, theirs].forEach((b) => b.destroy());
    destroyMatrix(m);
    windows.destroy();
  }
});
