// gpt-oss's element-wise ops on the experts' outputs (inference/gpt-oss.ts, moe.ts on the GPU),
// in place on `a`, one value per invocation:
//   ADD_ID      a[p · width + i] += bias[ids[p] · width + i]   ggml_add_id: each (row, choice)
//               pair's output takes the bias of the expert the router chose for it
//   SWIGLU_OAI  a[i] = min(a, 7) · σ(1.702 · min(a, 7)) · (clamp(b[i], -7, 7) + 1)
//               gate a, up b: ggml_swiglu_oai with gpt-oss's alpha and limit
// Defines: WG, ADD_ID or SWIGLU_OAI.

struct Params {
  n: u32,     // values to update
  width: u32, // values per pair (ADD_ID)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
#ifdef ADD_ID
@group(0) @binding(2) var<storage, read> bias: array<f32>; // (experts, width)
@group(0) @binding(3) var<storage, read> ids: array<u32>; // (pairs)
#endif
#ifdef SWIGLU_OAI
@group(0) @binding(2) var<storage, read> b: array<f32>;
#endif

const ALPHA = 1.702;
const LIMIT = 7.0;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (i >= params.n) {
    return;
  }
#ifdef ADD_ID
  let p = i / params.width;
  a[i] = a[i] + bias[ids[p] * params.width + i % params.width];
#endif
#ifdef SWIGLU_OAI
  let x = min(a[i], LIMIT);
  let y = clamp(b[i], -LIMIT, LIMIT);
  a[i] = x / (1.0 + exp(ALPHA * -x)) * (y + 1.0);
#endif
}
