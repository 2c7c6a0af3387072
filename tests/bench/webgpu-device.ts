/**
 * The WebGPU bench for a real GPU, in one process (tests/bench/gpu-device.sh runs it on a lent
 * GPU machine; `--dry-run` there runs it on llvmpipe):
 *   1. what the device reads and copies per second through WebGPU (the roofline here);
 *   2. every matvec variant the adapter has (row, workgroup, subgroup) against the CPU
 *      reference, all weight types: a kernel that is wrong on this device fails the run;
 *   3. matvec GB/s of weights per variant and type, many products in one submit (no readback);
 *   4. Grove's decode end to end (greedy stream) on a model: tok/s and GB/s of weights
 *      streamed per token, and 16 concurrent sequences against one on the batched engine.
 * Prints a markdown report; with --json PATH also the numbers.
 *
 *   deno run -A tests/bench/webgpu-device.ts [--model big|PATH] [--decode 128] [--quick]
 */
import { parseArgs } from "node:util";
import { GgmlType, ggmlTypeName } from "../../inference/ggml-type.ts";
import { openGguf } from "../../inference/gguf.ts";
import { modelConfigOf } from "../../inference/model-config.ts";
import { quantize } from "../../inference/quant/mod.ts";
import { requestGpu } from "../../inference/webgpu/device.ts";
import { GPU_WEIGHT_TYPES } from "../../inference/webgpu/kernel-types.ts";
import {
  createMatVec,
  defaultMatVecVariant,
  type MatVecVariant,
} from "../../inference/webgpu/kernels/matvec.ts";
import { destroyMatrix, uploadMatrix } from "../../inference/webgpu/weights.ts";
import { createWebGpuEngine } from "../../inference/webgpu/webgpu-engine.ts";
import { createCpuEngine } from "../../inference/cpu-engine.ts";
import { referenceProduct } from "../support/dequant-product.ts";
import { createF32, randomF32, readF32, uploadF32 } from "../support/gpu.ts";
import { bigModelOptions, ensureModel } from "./models.ts";
import { measureBatching } from "./batching.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "big" },
    decode: { type: "string", default: "128" },
    prompt: { type: "string", default: "64" },
    quick: { type: "boolean", default: false }, // llvmpipe dry run: small sizes, few reps
    json: { type: "string" },
    "skip-batching": { type: "boolean", default: false },
  },
});
const quick = values.quick;
const report: string[] = [];
const numbers: Record<string, unknown> = {};
const say = (line = "") => (console.log(line), report.push(line));
const log = (line: string) => console.error(line);

const gpu = await requestGpu();
const { device } = gpu;
say(`# Grove WebGPU on ${gpu.adapterName}`);
say();
say(
  `fallback adapter ${gpu.isFallback}, shader-f16 ${gpu.f16}, subgroups ${gpu.subgroups}, ` +
    `maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}, ` +
    `maxBufferSize ${gpu.limits.maxBufferSize}`,
);
const adapterFeature = (await navigator.gpu.requestAdapter())?.features.has("subgroups") ?? false;
say(
  `the adapter ${adapterFeature ? "has" : "lacks"} the subgroups feature; the subgroup kernels ` +
    (gpu.subgroups ? "compile here and are used" : "are not used"),
);
numbers.adapter = gpu.adapterName;
numbers.subgroups = gpu.subgroups;

/** Median ms of one `encode`, from submits of `reps` and of 1 (their difference drops the submit and wait). */
async function timeEncode(
  encode: (pass: GPUComputePassEncoder | GPUCommandEncoder) => void,
  reps: number,
  copies = false,
): Promise<number> {
  const run = async (n: number) => {
    const enc = device.createCommandEncoder();
    if (copies) {
      for (let i = 0; i < n; i++) encode(enc);
    } else {
      const pass = enc.beginComputePass();
      for (let i = 0; i < n; i++) encode(pass);
      pass.end();
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(1);
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) samples.push(((await run(reps + 1)) - (await run(1))) / reps);
  samples.sort((a, b) => a - b);
  return Math.max(samples[1], 1e-6);
}

// 1. the roofline through WebGPU: a buffer copy (read + write) and a read-only reduction
const roofBytes = Math.min(
  quick ? 64 << 20 : 1 << 30,
  gpu.limits.maxStorageBufferBindingSize,
  gpu.limits.maxBufferSize,
) & ~255;
const READ_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  let stride = nw.x * 256u;
  for (var i = g.x; i < arrayLength(&src); i += stride) {
    acc += src[i];
  }
  if (acc.x == 12345.678) { sink[g.x] = acc.y; } // keeps the loads
}`;
{
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = device.createBuffer({ size: roofBytes, usage });
  const b = device.createBuffer({ size: roofBytes, usage });
  const sink = device.createBuffer({ size: 1 << 20, usage });
  const reps = quick ? 2 : 10;
  const copyMs = await timeEncode(
    (e) => (e as GPUCommandEncoder).copyBufferToBuffer(a, 0, b, 0, roofBytes),
    reps,
    true,
  );
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code: READ_WGSL }), entryPoint: "main" },
  });
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: a } }, { binding: 1, resource: { buffer: sink } }],
  });
  const readMs = await timeEncode((p) => {
    const pass = p as GPUComputePassEncoder;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(quick ? 64 : 4096);
  }, reps);
  const copyGBs = (2 * roofBytes) / copyMs / 1e6, readGBs = roofBytes / readMs / 1e6;
  numbers.copyGBs = copyGBs;
  numbers.readGBs = readGBs;
  say();
  say(
    `Roofline through WebGPU (${roofBytes >> 20} MiB): buffer copy ${copyGBs.toFixed(0)} GB/s ` +
      `(read + write), read-only reduction ${readGBs.toFixed(0)} GB/s; the larger is the ` +
      "roofline the figures below are set against.",
  );
  for (const x of [a, b, sink]) x.destroy();
}

/** Memory bandwidth as WebGPU reaches it: a copy's read + write traffic, or a plain read. */
function roofline(): number {
  return Math.max(numbers.copyGBs as number, numbers.readGBs as number);
}

// 2. correctness of every variant this adapter runs, against the CPU reference
const VARIANTS: MatVecVariant[] = [
  "row",
  "workgroup",
  ...(gpu.subgroups ? ["subgroup" as const] : []),
];
say();
say(`Default matvec variant here: ${defaultMatVecVariant(gpu, { layout: "rows" })}.`);
{
  const failures: string[] = [];
  let seed = 3;
  for (const type of GPU_WEIGHT_TYPES) {
    for (const variant of VARIANTS) {
      const rows = 67, cols = 1024;
      const w = randomF32(rows * cols, seed += 2);
      const data = quantize(type, w, cols);
      const xs = randomF32(cols, seed + 1);
      const want = referenceProduct(type, data, rows, cols, xs, 1);
      const m = uploadMatrix(device, { name: "w", type, rows, cols, data });
      const x = uploadF32(device, xs), y = createF32(device, rows);
      const op = createMatVec(gpu, m, x, y, { variant });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      op.encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      const got = await readF32(device, y, rows);
      let worst = 0;
      for (let r = 0; r < rows; r++) {
        worst = Math.max(worst, Math.abs(got[r] - want[r]) / (1e-4 + 1e-4 * Math.abs(want[r])));
      }
      if (!(worst <= 1)) {
        failures.push(`${ggmlTypeName(type)} ${variant} (${worst.toFixed(1)}× tol)`);
      }
      op.destroy();
      destroyMatrix(m);
      x.destroy();
      y.destroy();
    }
  }
  const err = gpu.lastError();
  if (err) failures.push(`device error: ${err.message}`);
  numbers.kernelFailures = failures;
  say(
    `Matvec against the CPU reference (${GPU_WEIGHT_TYPES.length} types × ${
      VARIANTS.join(", ")
    }): ` +
      (failures.length ? `FAILED ${failures.join("; ")}` : "all equal within 1e-4"),
  );
}

// 2b. the whole engine with this adapter's default kernels (argmax included): the CPU engine's
// greedy tokens on the embedded model
{
  const stories = new URL("../../models/stories260K.gguf", import.meta.url).pathname;
  const cpu = await createCpuEngine({ path: stories, ctxSize: 64, kvType: "f32" });
  const gpuEngine = await createWebGpuEngine({ path: stories, ctxSize: 64, gpu });
  const cs = cpu.createSession(), gs = gpuEngine.createSession();
  const want = [argmax(cs.evaluate([1]))];
  while (want.length < 40) want.push(argmax(cs.evaluate([want.at(-1)!])));
  const got: number[] = [];
  for await (const t of gs.evaluateGreedyStream!([1], 40)) got.push(t);
  gpuEngine.close();
  const first = got.findIndex((t, i) => t !== want[i]);
  if (first >= 0) {
    (numbers.kernelFailures as string[]).push(`engine: token ${first} differs from the CPU's`);
  }
  say(
    `Engine on stories260K, 40 greedy tokens: ` +
      (first < 0 ? "the CPU engine's tokens" : `FAILED, differs from the CPU at token ${first}`),
  );
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

// 3. matvec GB/s per variant and type
function encodedMatrix(type: GgmlType, rows: number, cols: number): Uint8Array {
  const sample = 16; // quantizing every row in TypeScript is slow: repeat a few
  const enc = quantize(type, randomF32(sample * cols, 5), cols);
  const rowBytes = enc.length / sample;
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    out.set(enc.subarray((r % sample) * rowBytes, (r % sample + 1) * rowBytes), r * rowBytes);
  }
  return out;
}
{
  const shapes = quick ? [[1024, 1024]] : [[4096, 4096], [14336, 4096]];
  const types = [GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0, GgmlType.F16];
  const configs: [string, MatVecVariant, number][] = [
    ["row wg64", "row", 64],
    ["workgroup wg64", "workgroup", 64],
    ["workgroup wg256", "workgroup", 256],
    ...(gpu.subgroups
      ? [["subgroup wg64", "subgroup", 64], ["subgroup wg256", "subgroup", 256]] as [
        string,
        MatVecVariant,
        number,
      ][]
      : []),
  ];
  say();
  say(
    `Matvec weight GB/s and share of the roofline (${quick ? 2 : 50} products per submit, ` +
      "no readback):",
  );
  say();
  say(`| type | shape | MB | ${configs.map((c) => c[0]).join(" | ")} |`);
  say(`| --- | --- | --- | ${configs.map(() => "---").join(" | ")} |`);
  const table: Record<string, number> = {};
  for (const [rows, cols] of shapes) {
    for (const type of types) {
      const data = encodedMatrix(type, rows, cols);
      const m = uploadMatrix(device, { name: "w", type, rows, cols, data });
      const x = uploadF32(device, randomF32(cols, 9)), y = createF32(device, rows);
      const cells: string[] = [];
      for (const [label, variant, workgroupSize] of configs) {
        const op = createMatVec(gpu, m, x, y, { variant, workgroupSize });
        const ms = await timeEncode((p) => op.encode(p as GPUComputePassEncoder), quick ? 2 : 50);
        const gbs = data.length / ms / 1e6;
        table[`${ggmlTypeName(type)} ${rows}x${cols} ${label}`] = gbs;
        const share = `${(100 * gbs / roofline()).toFixed(0)} %`;
        cells.push(`${gbs >= 100 ? gbs.toFixed(0) : gbs.toPrecision(3)} (${share})`);
        op.destroy();
      }
      say(
        `| ${ggmlTypeName(type)} | ${rows}x${cols} | ${(data.length / 1e6).toFixed(1)} | ` +
          `${cells.join(" | ")} |`,
      );
      destroyMatrix(m);
      x.destroy();
      y.destroy();
    }
  }
  numbers.matvecGBs = table;
}

// 4. decode end to end
async function streamedBytes(path: string): Promise<number> {
  const file = await openGguf(path);
  const tied = !file.tensor("output.weight");
  const moe = modelConfigOf(file).moe;
  const share = (name: string) => moe && /_exps\.weight$/.test(name) ? moe.used / moe.experts : 1;
  return file.tensors
    .filter((t) => tied || t.name !== "token_embd.weight")
    .reduce((sum, t) => sum + t.byteLength * share(t.name), 0);
}
{
  // the embedded model ships in the repo (the fixtures' copy may not travel to a device)
  const stories = new URL("../../models/stories260K.gguf", import.meta.url).pathname;
  let path = values.model === "stories" ? stories : values.model;
  if (path === "big") {
    const t = performance.now();
    log("building (or finding) the bench's 1.1 B Q4_0 model...");
    path = await ensureModel(bigModelOptions(GgmlType.Q4_0));
    log(`  model ready in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  const bytes = await streamedBytes(path);
  const promptLen = Number(values.prompt), decode = Number(values.decode);
  const engine = await createWebGpuEngine({ path, ctxSize: promptLen + decode + 8, gpu });
  const prompt = Array.from({ length: promptLen }, (_, i) => 1 + ((i * 7919) % 500));
  const decodeRate = async (): Promise<[number, number]> => {
    const s = engine.createSession();
    let t1 = 0;
    const t0 = performance.now();
    for await (const _ of s.evaluateGreedyStream!(prompt, decode + 1)) t1 ||= performance.now();
    const t2 = performance.now();
    (s as { destroy?: () => void }).destroy?.();
    return [promptLen / ((t1 - t0) / 1000), decode / ((t2 - t1) / 1000)];
  };
  await decodeRate(); // compiles every pipeline
  const runs = [await decodeRate(), await decodeRate(), await decodeRate()];
  runs.sort((a, b) => a[1] - b[1]);
  const [prefill, tokps] = runs[1];
  const gbs = (bytes * tokps) / 1e9;
  engine.close();
  numbers.decode = { path, bytesPerToken: bytes, prefill, tokps, gbs };
  say();
  say(
    `Decode on ${path.split("/").pop()} (${(bytes / 1e6).toFixed(0)} MB of weights per token): ` +
      `prefill ${prefill.toFixed(1)} tok/s (${promptLen} tokens), decode ${tokps.toFixed(1)} ` +
      `tok/s (${decode} tokens, median of 3) = ${gbs.toFixed(1)} GB/s of weights, ` +
      `${(100 * gbs / roofline()).toFixed(1)} % of the roofline above.`,
  );
  if (!values["skip-batching"]) {
    const b = await measureBatching("webgpu", path, quick ? 4 : 32, 16);
    numbers.batching = b;
    say(
      `Batched decode: 1 sequence ${b.single.toFixed(1)} tok/s, ${b.width} sequences ` +
        `${b.concurrent.toFixed(1)} tok/s together (${(b.concurrent / b.single).toFixed(2)}×).`,
    );
  }
}

if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(numbers, null, 2));
const failed = (numbers.kernelFailures as string[]).length > 0;
Deno.exit(failed ? 1 : 0);
