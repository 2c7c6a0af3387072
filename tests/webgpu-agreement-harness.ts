/**
 * What the WebGPU agreement tests share: each reference model run on the
 * WebGPU engine, the CPU engine, and the CPU engine on the same weights
 * dequantized to F32, in lockstep, teacher-forced on the CPU's greedy tokens.
 *
 * The CPU engine rounds activations to the weight's companion type (Q8_0 /
 * Q8_K blocks, F16 / BF16) like llama.cpp; the GPU kernels keep them f32. So
 * the GPU must match the dequantized-F32 CPU run tightly (a wrong dequantization
 * or dot product shows there), and the CPU engine itself within the noise that
 * activation rounding adds.
 */
import assert from "node:assert/strict";
import {
  createCpuEngine,
  type Engine,
  GgmlType,
  SUPPORTED_WEIGHT_TYPES,
} from "../inference/mod.ts";
import { createWebGpuEngine } from "../inference/webgpu/mod.ts";
import { createTestGpu } from "./support/gpu.ts";
import { quantizeGguf } from "./support/quantize-gguf.ts";
import type { ReferenceModel } from "./support/reference-models.ts";
import { logSoftmax } from "./support/logits.ts";

export { logSoftmax };

export const CTX = 96;

/** The architectures whose one-type test models webgpu-agreement(-qwen).test.ts run. */
const WEBGPU_ARCHES = ["llama", "qwen2", "qwen3"];

/**
 * Whether webgpu-agreement.test.ts and webgpu-agreement-qwen.test.ts run
 * `model`: stories260K and its re-quantizations, and the generated test
 * models of a WEBGPU_ARCHES arch in one weight type (test-<arch>-<type>[-tied]).
 * The other reference models (MoE, gemma3, phi3, qwen35moe, gpt-oss, RoPE
 * scaling) have their own webgpu-agreement-*.test.ts over their own lists.
 */
export function runsOnWebGpu(model: Pick<ReferenceModel, "name">): boolean {
  if (model.name.startsWith("stories260K")) return true;
  const types = SUPPORTED_WEIGHT_TYPES.map((t) => GgmlType[t].toLowerCase());
  return WEBGPU_ARCHES.some((arch) =>
    types.some((t) => [`test-${arch}-${t}`, `test-${arch}-${t}-tied`].includes(model.name))
  );
}

/**
 * |Δ logprob| allowed against the CPU engine: the llama.cpp agreement test's bounds, except
 * stories260K's quantized files, whose 64-wide rows hold only two 32-value activation
 * blocks, so rounding them moves more (measured 0.26 over the top 10 of 80 steps).
 */
export function roundingTolerance(name: string): number {
  if (name.endsWith("f32") || name.endsWith("f32-tied") || name === "stories260K") return 1e-3;
  if (name.endsWith("f16")) return 0.05;
  return name.startsWith("stories260K") ? 0.4 : 0.15;
}

/** |Δ logprob| allowed against the CPU on the same weights in F32: f32 summation order only. */
const EXACT_TOLERANCE = 1e-3;

/** Indices of the k largest values, best first (ties to the lower index). */
export function topIds(values: Float64Array, k: number): number[] {
  return [...values.keys()].sort((a, b) => values[b] - values[a] || a - b).slice(0, k);
}

/** Tracks one engine's greedy picks and log-probabilities against a reference's. */
export function tracker(tolerance: number) {
  let maxLogprob = 0, maxLogit = 0;
  const nearTies: string[] = [];
  return {
    step(label: string, got: Float32Array, want: Float32Array) {
      const gl = logSoftmax(got), wl = logSoftmax(want);
      const first = topIds(wl, 1)[0];
      const mine = topIds(gl, 1)[0];
      if (mine !== first) {
        // Only a token the reference puts less than the noise bound behind its first choice
        // (its runner-up, or a third one in a three-way near-tie).
        const margin = wl[first] - wl[mine];
        assert.ok(
          margin < tolerance,
          `${label}: the GPU's greedy token ${mine} differs from ${first} (margin ${margin})`,
        );
        nearTies.push(`${label} (margin ${margin.toExponential(1)})`);
      }
      for (const id of topIds(wl, 10)) {
        maxLogprob = Math.max(maxLogprob, Math.abs(gl[id] - wl[id]));
        maxLogit = Math.max(maxLogit, Math.abs(got[id] - want[id]));
      }
    },
    result: () => ({ maxLogprob, maxLogit, nearTies }),
  };
}

async function engines(model: ReferenceModel, dir: string) {
  const path = await model.build(dir);
  // Like with like: the GPU's KV cache is f32, the CPU's default f16.
  const cpu = await createCpuEngine({ path, ctxSize: CTX, kvType: "f32" });
  let exact: Engine = cpu;
  if (
    !model.name.endsWith("f32") && !model.name.endsWith("f32-tied") && model.name !== "stories260K"
  ) {
    const f32 = `${dir}/${model.name}-as-f32.gguf`;
    await quantizeGguf(path, f32, GgmlType.F32);
    exact = await createCpuEngine({ path: f32, ctxSize: CTX, kvType: "f32" });
  }
  const gpu = await createWebGpuEngine({ path, ctxSize: CTX, gpu: await createTestGpu() });
  return { cpu, exact, gpu };
}

/** Runs `model` on the three engines and asserts agreement; logs the numbers. */
/**
 * Registers `webgpu agrees with the CPU engine: <name>` for each model, its files built in a
 * temporary folder (`dir`, for the file's other tests too); `cleanUp` registers the test that
 * removes the folder, to be called after the file's other tests.
 */
export function agreementTests(
  models: readonly ReferenceModel[],
  suite?: string,
): { dir: string; cleanUp: () => void } {
  const dir = Deno.makeTempDirSync({
    prefix: `grove-webgpu-agreement-${suite ? `${suite}-` : ""}`,
  });
  for (const model of models) {
    Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
  }
  const label = suite ? `webgpu agreement (${suite})` : "webgpu agreement";
  const cleanUp = () =>
    Deno.test(`${label}: clean up generated models`, () => {
      Deno.removeSync(dir, { recursive: true });
    });
  return { dir, cleanUp };
}

export async function checkAgreement(model: ReferenceModel, dir: string): Promise<void> {
  const { cpu, exact, gpu } = await engines(model, dir);
  const vsCpu = tracker(roundingTolerance(model.name));
  const vsExact = tracker(EXACT_TOLERANCE);
  let steps = 0;
  try {
    for (const prompt of model.prompts) {
      const cs = cpu.createSession(), es = exact.createSession(), gs = gpu.createSession();
      let tokens = prompt.promptTokens;
      for (let i = 0; i < model.steps; i++) {
        const want = cs.evaluate(tokens);
        const wantExact = es.evaluate(tokens);
        const got = await gs.evaluateAsync!(tokens);
        const label = `${model.name}/${prompt.name} step ${i}`;
        vsCpu.step(label, got, want);
        vsExact.step(label, got, wantExact);
        steps++;
        // The CPU's token for all three, so one early disagreement cannot hide later steps.
        tokens = [topIds(logSoftmax(want), 1)[0]];
      }
    }
  } finally {
    gpu.close();
  }
  const a = vsCpu.result(), b = vsExact.result();
  const ties = (t: string[]) => t.length ? ` (near-ties: ${t.join(", ")})` : "";
  console.log(
    `  ${model.name}: ${steps} steps; vs CPU: ${steps - a.nearTies.length} greedy equal, ` +
      `max |Δ logprob| ${a.maxLogprob.toExponential(2)}, |Δ logit| ${a.maxLogit.toExponential(2)}${
        ties(a.nearTies)
      }; vs CPU on F32 weights: ${steps - b.nearTies.length} equal, ` +
      `|Δ logprob| ${b.maxLogprob.toExponential(2)}${ties(b.nearTies)}`,
  );
  assert.ok(steps >= 32, `${model.name}: only ${steps} steps`);
  // Activation rounding on tiny random models flips a near-tie now and then; a bug flips many.
  assert.ok(a.nearTies.length <= steps / 10, `${model.name}: ${a.nearTies.length} near-ties`);
  assert.ok(b.nearTies.length <= 1, `${model.name}: ${b.nearTies.length} near-ties in f32`);
  assert.ok(
    a.maxLogprob < roundingTolerance(model.name),
    `${model.name}: log-probabilities differ from the CPU engine's by ${a.maxLogprob}`,
  );
  assert.ok(
    b.maxLogprob < EXACT_TOLERANCE,
    `${model.name}: log-probabilities differ from the CPU on F32 weights by ${b.maxLogprob}`,
  );
}
