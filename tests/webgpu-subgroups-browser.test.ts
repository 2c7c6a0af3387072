/**
 * The subgroup variant of the matvec kernel (subgroupAdd reductions) against the CPU
 * reference. Deno's llvmpipe adapter has no `subgroups`, so the kernel runs in headless
 * Chromium's WebGPU (SwiftShader, which has them): a page served from 127.0.0.1 (a secure
 * context) gets the kernel's WGSL exactly as createMatVec compiles it, the quantized weights
 * and x, runs one dispatch per case and sends y back. Every weight type the GPU engine reads,
 * at two workgroup sizes; the engine's own choice of variant per adapter is checked here too.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { GgmlType, ggmlTypeName } from "../inference/ggml-type.ts";
import { quantize } from "../inference/quant/mod.ts";
import { GPU_WEIGHT_TYPES } from "../inference/webgpu/kernel-types.ts";
import {
  createMatVec,
  defaultMatVecVariant,
  matVecSource,
  UNIT_VALUES,
} from "../inference/webgpu/kernels/matvec.ts";
import { bytesFor } from "../inference/quant/codec.ts";
import { uploadMatrix } from "../inference/webgpu/weights.ts";
import { referenceProduct } from "./support/dequant-product.ts";
import { assertClose, createF32, createTestGpu, randomF32, uploadF32 } from "./support/gpu.ts";
import { chromiumPath } from "./support/browser.ts";

/** What the page runs: one matvec dispatch, one row per workgroup. */
interface PageCase {
  label: string;
  source: string;
  weights: number[]; // the row-major ggml bytes as u32 words, as uploadMatrix stores them
  x: number[];
  params: number[]; // matvec.wgsl's Params
  rows: number;
}

interface PageResult {
  adapter: string;
  subgroups: boolean;
  results: { label: string; y?: number[]; error?: string }[];
}

/** Runs in the page (serialised by playwright): no imports, only WebGPU. */
async function runInPage(cases: PageCase[]): Promise<PageResult> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("the page has no WebGPU adapter");
  const subgroups = adapter.features.has("subgroups" as GPUFeatureName);
  const device = await adapter.requestDevice({
    requiredFeatures: subgroups ? ["subgroups" as GPUFeatureName] : [],
  });
  const info = adapter.info;
  const results: PageResult["results"] = [];
  const storage = (
    data: Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer> | number,
    extra = 0,
  ) => {
    const size = typeof data === "number" ? data : Math.max(16, data.byteLength);
    const b = device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | extra,
    });
    if (typeof data !== "number") device.queue.writeBuffer(b, 0, data);
    return b;
  };
  for (const c of cases) {
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code: c.source });
    const messages = (await module.getCompilationInfo()).messages
      .filter((m) => m.type === "error")
      .map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
    if (messages.length) {
      await device.popErrorScope();
      results.push({ label: c.label, error: messages.join("; ") });
      continue;
    }
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const uniform = device.createBuffer({
      size: 32,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(uniform, 0, new Uint32Array(c.params));
    const w = storage(new Uint32Array(c.weights));
    const x = storage(new Float32Array(c.x));
    const y = storage(c.rows * 4, GPUBufferUsage.COPY_SRC);
    const read = device.createBuffer({
      size: c.rows * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [uniform, w, x, y].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(c.rows);
    pass.end();
    enc.copyBufferToBuffer(y, 0, read, 0, c.rows * 4);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const out = [...new Float32Array(read.getMappedRange())];
    read.unmap();
    const err = await device.popErrorScope();
    results.push(err ? { label: c.label, error: err.message } : { label: c.label, y: out });
  }
  return { adapter: `${info.vendor} ${info.architecture} ${info.description}`, subgroups, results };
}

function pageCase(type: GgmlType, rows: number, cols: number, wg: number, seed: number) {
  const w = randomF32(rows * cols, seed);
  const data = quantize(type, w, cols);
  const x = randomF32(cols, seed + 1);
  const rowBytes = bytesFor(type, cols);
  const words = new Uint32Array(Math.ceil((rows * rowBytes) / 4));
  new Uint8Array(words.buffer).set(data.subarray(0, rows * rowBytes));
  const units = cols / UNIT_VALUES[type as keyof typeof UNIT_VALUES];
  const c: PageCase = {
    label: `${ggmlTypeName(type)} ${rows}x${cols} WG ${wg}`,
    source: matVecSource(type, "subgroup", { workgroupSize: wg }),
    weights: [...words],
    x: [...x],
    params: [rows, cols, rowBytes, units, 0, 0, 0, rows],
    rows,
  };
  return { c, want: referenceProduct(type, data, rows, cols, x, 1) };
}

Deno.test("subgroup matvec in Chromium's WebGPU equals the CPU reference, every type", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      new Response("<!doctype html><title>Grove kernel test</title>", {
        headers: { "content-type": "text/html" },
      }),
  );
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [
      "--no-sandbox",
      "--disable-dev-shm-usage",
      "--enable-unsafe-webgpu",
      "--use-webgpu-adapter=swiftshader",
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.addr.port}/`);
    const built: ReturnType<typeof pageCase>[] = [];
    let seed = 11;
    for (const type of GPU_WEIGHT_TYPES) {
      // 64 × WG units and one unit per lane at most: lanes left idle must add nothing
      for (const [cols, wg] of [[2048, 64], [512, 256]] as const) {
        built.push(pageCase(type, 37, cols, wg, seed += 3));
      }
    }
    const got = await page.evaluate(runInPage, built.map((b) => b.c));
    assert.ok(got.subgroups, `the page's adapter (${got.adapter}) has no subgroups feature`);
    assert.equal(got.results.length, built.length);
    got.results.forEach((r, i) => {
      assert.equal(r.error, undefined, `${r.label}: ${r.error}`);
      assertClose(r.y!, built[i].want, { atol: 1e-4, rtol: 1e-4 }, `${r.label} (${got.adapter})`);
    });
  } finally {
    await browser.close();
    await server.shutdown();
  }
});

Deno.test("matvec variants: subgroups where the adapter has them, refused where it does not", async () => {
  const rows = { layout: "rows" } as const;
  assert.equal(defaultMatVecVariant({ isFallback: false, subgroups: true }, rows), "subgroup");
  assert.equal(defaultMatVecVariant({ isFallback: false, subgroups: false }, rows), "workgroup");
  assert.equal(defaultMatVecVariant({ isFallback: true, subgroups: true }, rows), "row");
  assert.equal(
    defaultMatVecVariant({ isFallback: false, subgroups: true }, { layout: "rows4" }),
    "rows4",
  );
  const gpu = await createTestGpu();
  const m = uploadMatrix(gpu.device, {
    name: "w",
    type: GgmlType.Q8_0,
    rows: 4,
    cols: 64,
    data: quantize(GgmlType.Q8_0, randomF32(256, 5), 64),
  });
  const x = uploadF32(gpu.device, randomF32(64, 6)), y = createF32(gpu.device, 4);
  if (gpu.subgroups) {
    createMatVec(gpu, m, x, y, { variant: "subgroup" }).destroy();
  } else {
    assert.throws(
      () => createMatVec(gpu, m, x, y, { variant: "subgroup" }),
      /subgroup variant needs the subgroups feature/,
    );
  }
  for (const b of [...m.memory, x, y]) b.destroy();
});
