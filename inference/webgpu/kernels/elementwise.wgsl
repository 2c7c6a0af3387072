// Element-wise ops on f32, one value per invocation, in place on `a`:
//   ADD       a[i] += b[i]                      residual add (n values)
//   ADD_BIAS  a[i] += b[i % width]              a bias on each row of width values
//   SWIGLU    a[i] = silu(a[i]) * b[i]          gate a, up b: silu(g) * u
// Offsets let the rows live inside wider buffers (e.g. gate and up in one).

#define WG 256

struct Params {
  n: u32,        // values to update
  width: u32,    // bias length (ADD_BIAS)
  a_offset: u32, // elements
  b_offset: u32, // elements
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

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
