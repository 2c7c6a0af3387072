/**
 * The subgroup variant of the matvec kernel (subgroupAdd reductions) against the CPU
 * reference. Deno's llvmpipe adapter has no `subgroups`, so the kernel runs in headless
 * Chromium's WebGPU (SwiftShader, which has them): a page served from 127.0.0.1 (a secure
 * context) gets the kernel's WGSL exactly as createMatVec compiles it, the quantized weights
 * and x, runs one dispatch per case and sends y back. Every weight type the GPU engine reads,
 * at two workgroup sizes; the engine's own choice of variant per adapter is checked here too.
 */
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { GgmlType, ggmlTypeName } from "../inference/ggml-type.ts";
import { quantize } from "../inference/quant/mod.ts";
import { GPU_WEIGHT_TYPES } from "../inference/webgpu/kernel-types.ts";
import {
  createMatVec,
  defaultMatVecVariant,
  matVecDefines,
  matVecSource,
  UNIT_VALUES,
} from "../inference/webgpu/kernels/matvec.ts";
import { createMoeMatVec, moeMatVecSource } from "../inference/webgpu/kernels/moe-matvec.ts";
import { preprocessWgsl } from "../inference/webgpu/wgsl.ts";
import { bytesFor } from "../inference/quant/codec.ts";
import { uploadMatrix } from "../inference/webgpu/weights.ts";
import { argmaxDefines, argmaxSource } from "../inference/webgpu/kernels/argmax.ts";
import { referenceProduct } from "./support/dequant-product.ts";
import { assertClose, createF32, createTestGpu, randomF32, uploadF32 } from "./support/gpu.ts";
import { chromiumPath } from "./support/browser.ts";

/**
 * What the page runs: one dispatch of `source` with the uniform `params` at binding 0 and
 * `buffers` at bindings 1, 2, ... (f32 or u32 words); buffer `read` comes back as words.
 */
interface PageCase {
  label: string;
  source: string;
  params: number[];
  /** At bindings 1, 2, ... unless `binding` says; `uniform` for a second uniform. */
  buffers: { words: number[]; f32?: boolean; binding?: number; uniform?: boolean }[];
  read: number;
  workgroups: number | [number, number];
}

interface PageResult {
  adapter: string;
  subgroups: boolean;
  results: { label: string; words?: number[]; error?: string }[];
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
      size: Math.max(16, Math.ceil(c.params.length / 4) * 16),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(uniform, 0, new Uint32Array(c.params));
    const buffers = c.buffers.map((b) => {
      const data = b.f32 ? new Float32Array(b.words) : new Uint32Array(b.words);
      const buffer = device.createBuffer({
        size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
        usage: (b.uniform ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE) |
          GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      });
      device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    });
    const out = buffers[c.read];
    const staging = device.createBuffer({
      size: out.size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        ...buffers.map((buffer, i) => ({
          binding: c.buffers[i].binding ?? i + 1,
          resource: { buffer },
        })),
      ],
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    const [gx, gy] = typeof c.workgroups === "number" ? [c.workgroups, 1] : c.workgroups;
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    enc.copyBufferToBuffer(out, 0, staging, 0, out.size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const words = [...new Uint32Array(staging.getMappedRange())];
    staging.unmap();
    const err = await device.popErrorScope();
    results.push(err ? { label: c.label, error: err.message } : { label: c.label, words });
  }
  return { adapter: `${info.vendor} ${info.architecture} ${info.description}`, subgroups, results };
}

/** A headless Chromium with WebGPU on SwiftShader, on a blank page of a loopback server. */
async function withPage<T>(run: (page: Page) => Promise<T>): Promise<T> {
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
    return await run(page);
  } finally {
    await browser.close();
    await server.shutdown();
  }
}

/** Runs `cases` in the page; every one must compile and run without a device error. */
async function runCases(cases: PageCase[]): Promise<{ adapter: string; words: number[][] }> {
  const got = await withPage((page) => page.evaluate(runInPage, cases));
  assert.ok(got.subgroups, `the page's adapter (${got.adapter}) has no subgroups feature`);
  assert.equal(got.results.length, cases.length);
  for (const r of got.results) assert.equal(r.error, undefined, `${r.label}: ${r.error}`);
  return { adapter: got.adapter, words: got.results.map((r) => r.words!) };
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
    source: matVecSource(type, "subgroup", { workgroupSize: wg, browser: true }),
    params: [rows, cols, rowBytes, units, 0, 0, 0, rows], // matvec.wgsl's Params
    buffers: [{ words: [...words] }, { words: [...x], f32: true }, { words: [], f32: true }],
    read: 2,
    workgroups: rows,
  };
  c.buffers[2].words = new Array(rows).fill(0);
  return { c, want: referenceProduct(type, data, rows, cols, x, 1) };
}

Deno.test("subgroup matvec in Chromium's WebGPU equals the CPU reference, every type", async () => {
  const built: ReturnType<typeof pageCase>[] = [];
  let seed = 11;
  for (const type of GPU_WEIGHT_TYPES) {
    // 64 × WG units and one unit per lane at most: lanes left idle must add nothing
    for (const [cols, wg] of [[2048, 64], [512, 256]] as const) {
      built.push(pageCase(type, 37, cols, wg, seed += 3));
    }
  }
  const got = await runCases(built.map((b) => b.c));
  got.words.forEach((words, i) => {
    const y = new Float32Array(new Uint32Array(words).buffer, 0, built[i].want.length);
    assertClose(
      y,
      built[i].want,
      { atol: 1e-4, rtol: 1e-4 },
      `${built[i].c.label} (${got.adapter})`,
    );
  });
});

Deno.test("subgroup MoE matvec (mul_mat_id) in Chromium's WebGPU equals the CPU reference", async () => {
  const experts = 4, expertRows = 19, cols = 512, ids = [2, 0, 3, 2];
  const built: { c: PageCase; want: Float32Array }[] = [];
  let seed = 101;
  for (const type of GPU_WEIGHT_TYPES) {
    const rows = experts * expertRows;
    const data = quantize(type, randomF32(rows * cols, seed += 3), cols);
    const xs = randomF32(ids.length * cols, seed + 1); // a row of x per pair
    const rowBytes = bytesFor(type, cols), expertBytes = expertRows * rowBytes;
    const want = new Float32Array(ids.length * expertRows);
    ids.forEach((e, p) => {
      const w = data.subarray(e * expertBytes, (e + 1) * expertBytes);
      const x = xs.subarray(p * cols, (p + 1) * cols);
      want.set(referenceProduct(type, w, expertRows, cols, x, 1), p * expertRows);
    });
    const words = new Uint32Array(Math.ceil(data.length / 4));
    new Uint8Array(words.buffer).set(data);
    const defines = {
      ...matVecDefines(type, "subgroup", {
        workgroupSize: 64,
        bias: false,
        accumulate: false,
        f16Native: false,
      }),
      MOE_ID: true,
      SUBGROUP_ENABLE: true, // Tint's requirement (Deno's Naga does without)
    };
    const units = cols / UNIT_VALUES[type as keyof typeof UNIT_VALUES];
    built.push({
      c: {
        label: `moe ${ggmlTypeName(type)}`,
        source: preprocessWgsl(moeMatVecSource(), defines, "moe_matvec.wgsl"),
        params: [rows, cols, rowBytes, units, 0, 0, 0, 0], // matvec.wgsl's Params
        buffers: [
          { words: [...words] },
          { words: [...xs], f32: true },
          { words: new Array(want.length).fill(0), f32: true },
          // MoeParams: expert_rows, first_expert, part_experts, x_pair_div, x_stride (vec4s)
          { words: [expertRows, 0, experts, 1, cols / 4, 0, 0, 0], binding: 5, uniform: true },
          { words: ids, binding: 6 },
        ],
        read: 2,
        workgroups: [expertRows, ids.length],
      },
      want,
    });
  }
  const got = await runCases(built.map((b) => b.c));
  got.words.forEach((words, i) => {
    const y = new Float32Array(new Uint32Array(words).buffer, 0, built[i].want.length);
    assertClose(
      y,
      built[i].want,
      { atol: 1e-4, rtol: 1e-4 },
      `${built[i].c.label} (${got.adapter})`,
    );
  });
});

/** The CPU sampler's rule: the largest number, the lowest index among equals; NaN never. */
function cpuArgmax(x: Float32Array): number {
  let best = -1;
  for (let i = 0; i < x.length; i++) if (x[i] === x[i] && (best < 0 || x[i] > x[best])) best = i;
  return Math.max(best, 0);
}

Deno.test("subgroup argmax in Chromium's WebGPU picks what the CPU picks", async () => {
  const source = argmaxSource({ WG: 256, SUBGROUP: true, SUBGROUP_ENABLE: true });
  const rows: [string, Float32Array][] = [];
  for (const [n, seed] of [[1, 1], [7, 2], [255, 3], [32000, 4], [151936, 5]]) {
    rows.push([`random ${n}`, randomF32(n, seed, 10)]);
  }
  const ties = randomF32(3000, 6); // the max three times, in different lanes' strides
  ties[2999] = ties[1234] = ties[1301] = 5;
  rows.push(["ties", ties]);
  rows.push(["all equal", new Float32Array(600).fill(-2)]);
  const negative = randomF32(5000, 7).map((v) => -10 - Math.abs(v)); // below an empty lane's 0
  rows.push(["all negative", negative]);
  const nan = randomF32(4000, 8);
  for (let i = 0; i < 4000; i += 3) nan[i] = NaN;
  nan[3999] = 50;
  rows.push(["NaNs", nan]);
  const infs = new Float32Array(300).fill(-Infinity);
  infs[17] = NaN;
  infs[200] = -Infinity;
  rows.push(["all -inf", infs]);
  rows.push(["all NaN", new Float32Array(70).fill(NaN)]);
  const cases = rows.map(([label, x]): PageCase => ({
    label,
    source,
    params: [x.length, 1, 2, 1], // n, k, offset (two leading values), out_offset
    buffers: [
      { words: [7, 7, ...x], f32: true },
      { words: [0xdead, 0xdead, 0xdead] },
    ],
    read: 1,
    workgroups: 1,
  }));
  const got = await runCases(cases);
  got.words.forEach((words, i) => {
    const [label, x] = rows[i];
    assert.equal(words[1], cpuArgmax(x), `${label} (${got.adapter})`);
    assert.deepEqual([words[0], words[2]], [0xdead, 0xdead], `${label}: only its slot`);
  });
});

Deno.test("kernel variants: subgroups where the device has them, refused where it does not", async () => {
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
  const moe = () =>
    createMoeMatVec(gpu, m, 2, { x, y, ids: y }, { xPairDiv: 1, xStride: 64, variant: "subgroup" });
  if (gpu.subgroups) {
    createMatVec(gpu, m, x, y, { variant: "subgroup" }).destroy();
    moe().destroy();
  } else {
    assert.throws(
      () => createMatVec(gpu, m, x, y, { variant: "subgroup" }),
      /subgroup variant needs the subgroups feature/,
    );
    assert.throws(moe, /subgroup variant needs the subgroups feature/);
  }
  for (const b of [...m.memory, x, y]) b.destroy();
  assert.equal(argmaxDefines(gpu.device).SUBGROUP === true, gpu.subgroups);
});
