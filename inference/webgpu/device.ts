/**
 * WebGPU device setup: one adapter, one device with the limits raised to the
 * adapter's maxima (weights need big bindings) and shader-f16 / subgroups
 * requested where present, so kernels can pick variants from `Gpu`.
 */

/** Thrown when there is no WebGPU at all, or no adapter behind it. */
export class GpuUnavailableError extends Error {
  constructor(detail: string) {
    super(
      `WebGPU unavailable: ${detail}. On Linux a software adapter (llvmpipe) comes with ` +
        "Mesa's Vulkan drivers (e.g. `apt-get install mesa-vulkan-drivers`).",
    );
    this.name = "GpuUnavailableError";
  }
}

export interface GpuOptions {
  powerPreference?: GPUPowerPreference;
  /** Extra limits; each overrides the adapter maximum that is otherwise requested. */
  requiredLimits?: Record<string, number>;
  /** Called on uncaptured validation/OOM errors; default logs to stderr and remembers the error. */
  onError?: (error: GPUError) => void;
}

export interface Gpu {
  device: GPUDevice;
  /** e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" */
  adapterName: string;
  /** A software or otherwise limited adapter (llvmpipe): kernels pick CPU-friendly variants. */
  isFallback: boolean;
  /** shader-f16 enabled on the device: WGSL may `enable f16;`. */
  f16: boolean;
  subgroups: boolean;
  limits: GPUSupportedLimits;
  /** The first uncaptured device error, if any (also logged). */
  lastError: () => GPUError | undefined;
}

/** Limits raised to the adapter's own maxima unless the caller names them. */
const RAISED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxStorageBuffersPerShaderStage",
] as const;

function describeAdapter(info: GPUAdapterInfo | undefined): string {
  if (!info) return "unknown adapter";
  const parts = [info.description, info.vendor, info.architecture, info.device]
    .filter((p) => p && p !== "0");
  return parts.length > 0 ? parts[0] : "unknown adapter";
}

/**
 * The subgroup kernels are written for Deno's WGSL compiler (Naga), which takes the subgroup
 * builtins without `enable subgroups;` (it does not parse that yet): a device whose compiler
 * refuses this gets the kernels without subgroups instead of failing.
 */
const SUBGROUP_PROBE = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) width: u32) {
  let s = subgroupAdd(f32(sid));
  let i = subgroupMin(select(0xffffffffu, sid, s > 0.0));
  out[sid] = subgroupMax(s) + f32(i + width);
}`;

async function compiles(device: GPUDevice, code: string): Promise<boolean> {
  device.pushErrorScope("validation");
  try {
    const module = device.createShaderModule({ code });
    await device.createComputePipelineAsync({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
  } catch {
    await device.popErrorScope();
    return false;
  }
  return (await device.popErrorScope()) === null;
}

export async function requestGpu(opts: GpuOptions = {}): Promise<Gpu> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new GpuUnavailableError("navigator.gpu is missing in this runtime");
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter) throw new GpuUnavailableError("navigator.gpu.requestAdapter() found no adapter");

  const f16 = adapter.features.has("shader-f16");
  const subgroups = adapter.features.has("subgroups" as GPUFeatureName);
  const requiredFeatures: GPUFeatureName[] = [];
  if (f16) requiredFeatures.push("shader-f16");
  if (subgroups) requiredFeatures.push("subgroups" as GPUFeatureName);

  const requiredLimits: Record<string, number> = {};
  const adapterLimits = adapter.limits as unknown as Record<string, number>;
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapterLimits[name];
  Object.assign(requiredLimits, opts.requiredLimits ?? {});
  for (const [name, value] of Object.entries(requiredLimits)) {
    if (value > adapterLimits[name]) {
      throw new GpuUnavailableError(
        `the adapter allows ${name} = ${adapterLimits[name]}, the model needs ${value}`,
      );
    }
  }

  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const subgroupKernels = subgroups && await compiles(device, SUBGROUP_PROBE);
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const adapterName = describeAdapter(info);
  const isFallback = Boolean(
    info?.isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );

  let firstError: GPUError | undefined;
  device.addEventListener("uncapturederror", (ev) => {
    const error = (ev as GPUUncapturedErrorEvent).error;
    firstError ??= error;
    if (opts.onError) opts.onError(error);
    else console.error(`WebGPU error on ${adapterName}: ${error.message}`);
  });
  device.lost.then((lost) => {
    // destroy() on purpose is not news; anything else is.
    if (lost.reason !== "destroyed") {
      console.error(`WebGPU device lost on ${adapterName}: ${lost.message}`);
    }
  });

  return {
    device,
    adapterName,
    isFallback,
    f16,
    subgroups: subgroupKernels,
    limits: device.limits,
    lastError: () => firstError,
  };
}
