// RMSNorm over rows: out[r, i] = x[r, i] / sqrt(mean(x[r, :]^2) + eps) * w[i].
// Rows are `n` values apart: hidden rows (n = dim, one row per token) or the
// per-head Q/K norm of qwen3 (n = headDim, one row per token and head).
// One workgroup per row: a strided sum of squares, then a tree reduction.
// INPLACE: x is overwritten (WebGPU forbids binding one buffer twice writable).
// VEC4: rows, offsets and the weight go by vec4s (the host checks n and the
// offsets divide by 4; params stay in values): on llvmpipe each storage access
// is a loop over the SIMD lanes, so a vec4 costs about what one f32 does.

#define WG 64
#ifdef VEC4
alias V = vec4<f32>;
const LANES = 4u;
fn sq(v: V) -> f32 {
  return dot(v, v);
}
#else
alias V = f32;
const LANES = 1u;
fn sq(v: V) -> f32 {
  return v * v;
}
#endif

struct Params {
  n: u32,          // row length, also the weight length
  rows: u32,
  x_offset: u32,   // element offset of row 0 in x
  out_offset: u32, // element offset of row 0 in out (ignored when INPLACE)
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<V>;
#ifdef INPLACE
@group(0) @binding(2) var<storage, read_write> x: array<V>;
#else
@group(0) @binding(2) var<storage, read> x: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;
#endif

var<workgroup> partial: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) {
    return;
  }
  let n = params.n / LANES;
  let xb = (params.x_offset + row * params.n) / LANES;

  var ss = 0.0;
  for (var i = lid; i < n; i += {{WG}}u) {
    ss += sq(x[xb + i]);
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(partial[0] / f32(params.n) + params.eps);

#ifdef INPLACE
  for (var i = lid; i < n; i += {{WG}}u) {
    x[xb + i] = x[xb + i] * scale * w[i];
  }
#else
  let ob = (params.out_offset + row * params.n) / LANES;
  for (var i = lid; i < n; i += {{WG}}u) {
    out[ob + i] = x[xb + i] * scale * w[i];
  }
#endif
}
