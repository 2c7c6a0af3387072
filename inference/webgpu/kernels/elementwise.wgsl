// Element-wise ops on f32, one value per invocation, in place on `a`:
//   ADD       a[i] += b[i]                      residual add (n values)
//   ADD_BIAS  a[i] += b[i % width]              a bias on each row of width values
//   SWIGLU    a[i] = silu(a[i]) * b[i]          gate a, up b: silu(g) * u
// Offsets let the rows live inside wider buffers (e.g. gate and up in one).
// VEC4: every count and offset is in vec4s (the host checks they divide by 4):
// on llvmpipe each storage access is a loop over the SIMD lanes, so a vec4 costs
// about what one f32 does.

#define WG 256
#ifdef VEC4
alias V = vec4<f32>;
#else
alias V = f32;
#endif

struct Params {
  n: u32,        // values to update
  width: u32,    // bias length (ADD_BIAS)
  a_offset: u32, // elements
  b_offset: u32, // elements
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<V>;
@group(0) @binding(2) var<storage, read> b: array<V>;

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
  let ai = params.a_offset + i;
#ifdef ADD
  a[ai] = a[ai] + b[params.b_offset + i];
#endif
#ifdef ADD_BIAS
  a[ai] = a[ai] + b[params.b_offset + i % params.width];
#endif
#ifdef SWIGLU
  let g = a[ai];
  a[ai] = g / (1.0 + exp(-g)) * b[params.b_offset + i];
#endif
}
