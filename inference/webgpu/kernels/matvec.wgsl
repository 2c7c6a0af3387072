// y[r] = dot(row r of W, x) (+ bias[r]) (+ y[r] when ACCUMULATE), W in its ggml
// block layout, x and y f32. One weight type per variant, chosen by define:
//   W_F32, W_F16, W_BF16, W_Q8_0, W_Q4_0, W_Q4_K, W_Q5_K, W_Q6_K
// Layout variant:
//   ROW_PER_THREAD   each invocation computes whole rows (llvmpipe: its SIMD
//                    lanes are invocations, so lanes stream different rows)
//   (default)        one workgroup per row, invocations stride over the
//                    row's units and reduce in workgroup memory (real GPUs)
// A "unit" is the slice of a row one call of unit_dot handles: 4 values for
// float types, one 32-value block for Q8_0/Q4_0, a 64-value group for K-quants.
// Quantized blocks are read as u32 words (ggml_words.wgsl).
// Defines: WG (invocations per workgroup), UNIT_VALUES, optional BIAS, ACCUMULATE,
// F16_NATIVE (with W_F16: bind W as vec4<f16>).
#ifdef F16_NATIVE
enable f16;
#endif

struct Params {
  rows: u32,      // rows in this weight buffer
  cols: u32,
  row_bytes: u32,
  units: u32,     // units per row
  x_offset: u32,  // first x value, in vec4s
  y_offset: u32,  // y index of this buffer's first row
  bias_offset: u32,
  grid_x: u32,    // workgroups along x (the default layout may use a 2-D grid)
}

@group(0) @binding(0) var<uniform> P: Params;
#ifdef W_F32
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;
#else
#ifdef F16_NATIVE
@group(0) @binding(1) var<storage, read> W: array<vec4<f16>>;
#else
@group(0) @binding(1) var<storage, read> W: array<u32>;
#endif
#endif
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> B: array<f32>;
#endif

#ifndef W_F32
#ifndef F16_NATIVE
#include "ggml_words.wgsl"
#endif
#endif

const ONES = vec4<f32>(1.0);

#ifdef W_F32
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  return dot(W[(rb >> 4u) + u], X[xv + u]);
}
#endif

#ifdef W_F16
#ifdef F16_NATIVE
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  return dot(vec4<f32>(W[(rb >> 3u) + u]), X[xv + u]);
}
#else
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  // Rows of an even number of f16 values, so each row starts on a 4-byte word.
  let i = (rb >> 2u) + 2u * u;
  return dot(vec4<f32>(unpack2x16float(W[i]), unpack2x16float(W[i + 1u])), X[xv + u]);
}
#endif
#endif

#ifdef W_BF16
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let i = (rb >> 2u) + 2u * u;
  return dot(vec4<f32>(bf16x2(W[i]), bf16x2(W[i + 1u])), X[xv + u]);
}
#endif

#ifdef W_Q8_0
// 34 bytes: d (f16), 32 x int8.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let b = rb + u * 34u;
  var s = 0.0;
  for (var k = 0u; k < 8u; k++) {
    s += dot(vec4<f32>(unpack4xI8(w2(b + 2u + 4u * k))), X[xv + 8u * u + k]);
  }
  return h16(b) * s;
}
#endif

#ifdef W_Q4_0
// 18 bytes: d (f16), 16 bytes of nibbles: low nibble j = value j, high = value j + 16.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let b = rb + u * 18u;
  let xb = xv + 8u * u;
  var s = 0.0;
  var sx = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let w = w2(b + 2u + 4u * k);
    let xl = X[xb + k];
    let xh = X[xb + 4u + k];
    s += dot(vec4<f32>(unpack4xU8(w & 0x0f0f0f0fu)), xl);
    s += dot(vec4<f32>(unpack4xU8((w >> 4u) & 0x0f0f0f0fu)), xh);
    sx += dot(ONES, xl + xh);
  }
  // sum (q - 8) x = sum q x - 8 sum x
  return h16(b) * (s - 8.0 * sx);
}
#endif

#ifdef W_Q4_K
// 144 bytes: d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
// Unit j (0..3) is 64 values: low nibbles of qs[32j..32j+32] use sub-block 2j,
// high nibbles sub-block 2j+1.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let blk = u >> 2u;
  let j = u & 3u;
  let w0 = (rb >> 2u) + blk * 36u;
  let dm = unpack2x16float(W[w0]);
  let s0 = W[w0 + 1u];
  let s1 = W[w0 + 2u];
  let s2 = W[w0 + 3u];
  let lo = k_scale_min(s0, s1, s2, 2u * j);
  let hi = k_scale_min(s0, s1, s2, 2u * j + 1u);
  let xb = xv + 16u * u;
  var ql = 0.0;
  var qh = 0.0;
  var xl = 0.0;
  var xh = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let w = W[w0 + 4u + 8u * j + k];
    let a = X[xb + k];
    let c = X[xb + 8u + k];
    ql += dot(vec4<f32>(unpack4xU8(w & 0x0f0f0f0fu)), a);
    qh += dot(vec4<f32>(unpack4xU8((w >> 4u) & 0x0f0f0f0fu)), c);
    xl += dot(ONES, a);
    xh += dot(ONES, c);
  }
  return dm.x * (lo.x * ql + hi.x * qh) - dm.y * (lo.y * xl + hi.y * xh);
}
#endif

#ifdef W_Q5_K
// 176 bytes: d, dmin, 12 scale bytes, qh[32] (bit 2j / 2j+1 of qh[l] is the
// fifth bit of value 64j+l / 64j+32+l), qs[128] nibbles as in Q4_K.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let blk = u >> 2u;
  let j = u & 3u;
  let w0 = (rb >> 2u) + blk * 44u;
  let dm = unpack2x16float(W[w0]);
  let lo = k_scale_min(W[w0 + 1u], W[w0 + 2u], W[w0 + 3u], 2u * j);
  let hi = k_scale_min(W[w0 + 1u], W[w0 + 2u], W[w0 + 3u], 2u * j + 1u);
  let xb = xv + 16u * u;
  var ql = 0.0;
  var qh = 0.0;
  var xl = 0.0;
  var xh = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let w = W[w0 + 12u + 8u * j + k];
    let h = W[w0 + 4u + k] >> (2u * j);
    let a = X[xb + k];
    let c = X[xb + 8u + k];
    let vl = (w & 0x0f0f0f0fu) | ((h & 0x01010101u) << 4u);
    let vh = ((w >> 4u) & 0x0f0f0f0fu) | (((h >> 1u) & 0x01010101u) << 4u);
    ql += dot(vec4<f32>(unpack4xU8(vl)), a);
    qh += dot(vec4<f32>(unpack4xU8(vh)), c);
    xl += dot(ONES, a);
    xh += dot(ONES, c);
  }
  return dm.x * (lo.x * ql + hi.x * qh) - dm.y * (lo.y * xl + hi.y * xh);
}
#endif

#ifdef W_Q6_K
// 210 bytes: ql[128], qh[64], int8 scales[16], d (f16). Unit u = (half h, group g)
// covers l = 16g..16g+15 of half h: values 128h + l + {0, 32, 64, 96}.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let blk = u >> 2u;
  let h = (u >> 1u) & 1u;
  let g = u & 1u;
  let b = rb + blk * 210u;
  let qlb = b + 64u * h + 16u * g;
  let qhb = b + 128u + 32u * h + 16u * g;
  let xb = xv + 64u * blk + 32u * h + 4u * g;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  var s4 = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let a = w2(qlb + 4u * k);
    let c = w2(qlb + 32u + 4u * k);
    let e = w2(qhb + 4u * k);
    let q1 = (a & 0x0f0f0f0fu) | ((e & 0x03030303u) << 4u);
    let q2 = (c & 0x0f0f0f0fu) | (((e >> 2u) & 0x03030303u) << 4u);
    let q3 = ((a >> 4u) & 0x0f0f0f0fu) | (((e >> 4u) & 0x03030303u) << 4u);
    let q4 = ((c >> 4u) & 0x0f0f0f0fu) | (((e >> 6u) & 0x03030303u) << 4u);
    s1 += dot(vec4<f32>(unpack4xU8(q1)) - 32.0, X[xb + k]);
    s2 += dot(vec4<f32>(unpack4xU8(q2)) - 32.0, X[xb + 8u + k]);
    s3 += dot(vec4<f32>(unpack4xU8(q3)) - 32.0, X[xb + 16u + k]);
    s4 += dot(vec4<f32>(unpack4xU8(q4)) - 32.0, X[xb + 24u + k]);
  }
  let sc = b + 192u + 8u * h + g;
  let sum = i8f(b8(sc)) * s1 + i8f(b8(sc + 2u)) * s2 + i8f(b8(sc + 4u)) * s3 +
    i8f(b8(sc + 6u)) * s4;
  return h16(b + 208u) * sum;
}
#endif

fn finish(r: u32, acc: f32) {
  var v = acc;
#ifdef BIAS
  v += B[P.bias_offset + r];
#endif
#ifdef ACCUMULATE
  v += Y[P.y_offset + r];
#endif
  Y[P.y_offset + r] = v;
}

#ifdef ROW_PER_THREAD
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= P.rows) {
    return;
  }
  let rb = r * P.row_bytes;
  var acc = 0.0;
  for (var u = 0u; u < P.units; u++) {
    acc += unit_dot(rb, u, P.x_offset);
  }
  finish(r, acc);
}
#else
var<workgroup> partial: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * P.grid_x;
  // r is uniform across the workgroup, so the early return keeps barriers uniform.
  if (r >= P.rows) {
    return;
  }
  let rb = r * P.row_bytes;
  var acc = 0.0;
  for (var u = lid; u < P.units; u += {{WG}}u) {
    acc += unit_dot(rb, u, P.x_offset);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = {{WG}}u / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    finish(r, partial[0]);
  }
}
#endif
