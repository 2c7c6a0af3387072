// y[r] = dot(row r of W, x) (+ bias[r]) (+ y[r] when ACCUMULATE), W in its ggml
// block layout, x and y f32. One weight type per variant, chosen by define:
//   W_F32, W_F16, W_BF16, W_Q8_0, W_Q4_0, W_Q4_K, W_Q5_K, W_Q6_K,
//   W_Q5_0, W_Q5_1, W_IQ4_NL, W_MXFP4, W_Q2_K, W_Q3_K, W_IQ4_XS
// Layout variant:
//   ROW_PER_THREAD   each invocation computes whole rows (llvmpipe: its SIMD
//                    lanes are invocations, so lanes stream different rows)
//   (default)        one workgroup per row, invocations stride over the
//                    row's units and reduce in workgroup memory (real GPUs)
//   SUBGROUP         the default's layout, reduced with subgroupAdd instead of
//                    a barrier per halving (adapters with the subgroups feature);
//                    SUBGROUP_ENABLE adds the `enable subgroups;` that browsers'
//                    compilers (Tint) require and Deno's (Naga) does not parse yet
// A "unit" is the slice of a row one call of unit_dot handles: 4 values for
// float types, one 32-value block for Q8_0/Q4_0/Q5_0/Q5_1/IQ4_NL/MXFP4, a
// 64-value group for Q4_K/Q5_K/Q6_K, a 32-value group for Q2_K/Q3_K/IQ4_XS.
// Quantized blocks are read as u32 words (ggml_words.wgsl).
// Defines: WG (invocations per workgroup), UNIT_VALUES, optional BIAS, ACCUMULATE,
// F16_NATIVE (with W_F16: bind W as vec4<f16>).
#ifdef F16_NATIVE
enable f16;
#endif
#ifdef SUBGROUP_ENABLE
enable subgroups;
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

#ifdef W_Q5_0
// 22 bytes: d (f16), qh (u32: bit j is the fifth bit of value j), 16 bytes of
// nibbles as in Q4_0. Value = q - 16.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let b = rb + u * 22u;
  let qh = w2(b + 2u);
  let xb = xv + 8u * u;
  var s = 0.0;
  var sx = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let w = w2(b + 6u + 4u * k);
    let xl = X[xb + k];
    let xh = X[xb + 4u + k];
    let vl = (w & 0x0f0f0f0fu) | (bits4(qh >> (4u * k)) << 4u);
    let vh = ((w >> 4u) & 0x0f0f0f0fu) | (bits4(qh >> (16u + 4u * k)) << 4u);
    s += dot(vec4<f32>(unpack4xU8(vl)), xl);
    s += dot(vec4<f32>(unpack4xU8(vh)), xh);
    sx += dot(ONES, xl + xh);
  }
  return h16(b) * (s - 16.0 * sx);
}
#endif

#ifdef W_Q5_1
// 24 bytes (whole words): d, m (f16), qh (u32), 16 bytes of nibbles. Value = d q + m.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let w0 = (rb >> 2u) + u * 6u;
  let dm = unpack2x16float(W[w0]);
  let qh = W[w0 + 1u];
  let xb = xv + 8u * u;
  var s = 0.0;
  var sx = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let w = W[w0 + 2u + k];
    let xl = X[xb + k];
    let xh = X[xb + 4u + k];
    let vl = (w & 0x0f0f0f0fu) | (bits4(qh >> (4u * k)) << 4u);
    let vh = ((w >> 4u) & 0x0f0f0f0fu) | (bits4(qh >> (16u + 4u * k)) << 4u);
    s += dot(vec4<f32>(unpack4xU8(vl)), xl);
    s += dot(vec4<f32>(unpack4xU8(vh)), xh);
    sx += dot(ONES, xl + xh);
  }
  return dm.x * s + dm.y * sx;
}
#endif

#ifdef W_IQ4_NL
// 18 bytes as Q4_0, each nibble an index into KVALUES_IQ4NL.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let b = rb + u * 18u;
  let xb = xv + 8u * u;
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let w = w2(b + 2u + 4u * k);
    s += dot(iq4nl4(w), X[xb + k]) + dot(iq4nl4(w >> 4u), X[xb + 4u + k]);
  }
  return h16(b) * s;
}
#endif

#ifdef W_MXFP4
// 17 bytes (blocks start on any byte): e8m0 exponent, 16 bytes of nibbles
// (low = value j, high = value j + 16), each an index into KVALUES_MXFP4.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let b = rb + u * 17u;
  let xb = xv + 8u * u;
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let w = w1(b + 1u + 4u * k);
    s += dot(fp4x4(w), X[xb + k]) + dot(fp4x4(w >> 4u), X[xb + 4u + k]);
  }
  return e8m0_half(b8(b)) * s;
}
#endif

#ifdef W_Q2_K
// 84 bytes (whole words): scales[16] (low nibble scale, high nibble min),
// qs[64], d, dmin (f16). Value 128n + 32j + l of a block is bits 2j of
// qs[32n + l], with scale byte 8n + 2j + l / 16; unit u = (block, n, j).
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let w0 = (rb >> 2u) + (u >> 3u) * 21u;
  let n = (u >> 2u) & 1u;
  let j = u & 3u;
  let is = 8u * n + 2u * j;
  let sc = W[w0 + (is >> 2u)] >> (8u * (is & 3u));
  let xb = xv + 8u * u;
  var s0 = 0.0;
  var s1 = 0.0;
  var x0 = 0.0;
  var x1 = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let a = X[xb + k];
    let c = X[xb + 4u + k];
    let q0 = (W[w0 + 4u + 8u * n + k] >> (2u * j)) & 0x03030303u;
    let q1 = (W[w0 + 8u + 8u * n + k] >> (2u * j)) & 0x03030303u;
    s0 += dot(vec4<f32>(unpack4xU8(q0)), a);
    s1 += dot(vec4<f32>(unpack4xU8(q1)), c);
    x0 += dot(ONES, a);
    x1 += dot(ONES, c);
  }
  let dm = unpack2x16float(W[w0 + 20u]);
  return dm.x * (f32(sc & 0xfu) * s0 + f32((sc >> 8u) & 0xfu) * s1) -
    dm.y * (f32((sc >> 4u) & 0xfu) * x0 + f32((sc >> 12u) & 0xfu) * x1);
}
#endif

#ifdef W_Q3_K
// 110 bytes: hmask[32], qs[64], scales[12] (6-bit, see q3k_scale), d (f16).
// Value 128n + 32j + l of a block: low 2 bits are bits 2j of qs[32n + l], and
// it is q - 4 unless bit 4n + j of hmask[l] is set (then q); scale 8n + 2j + l / 16.
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let b = rb + (u >> 3u) * 110u;
  let n = (u >> 2u) & 1u;
  let j = u & 3u;
  let xb = xv + 8u * u;
  var s0 = 0.0;
  var s1 = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let a = X[xb + k];
    let c = X[xb + 4u + k];
    let q0 = ((w2(b + 32u + 32u * n + 4u * k) >> (2u * j)) & 0x03030303u) |
      (((w2(b + 4u * k) >> (4u * n + j)) & 0x01010101u) << 2u);
    let q1 = ((w2(b + 48u + 32u * n + 4u * k) >> (2u * j)) & 0x03030303u) |
      (((w2(b + 16u + 4u * k) >> (4u * n + j)) & 0x01010101u) << 2u);
    s0 += dot(vec4<f32>(unpack4xU8(q0)) - 4.0, a);
    s1 += dot(vec4<f32>(unpack4xU8(q1)) - 4.0, c);
  }
  let is = 8u * n + 2u * j;
  return h16(b + 108u) * (q3k_scale(b + 96u, is) * s0 + q3k_scale(b + 96u, is + 1u) * s1);
}
#endif

#ifdef W_IQ4_XS
// 136 bytes (whole words): d (f16), scales_h (u16), scales_l[4], qs[128].
// Unit u = 32-value sub-block ib of block u / 8: 6-bit scale ls from nibble ib
// of scales_l and bits 2 ib of scales_h, value = d (ls - 32) KVALUES_IQ4NL[q];
// qs[16 ib + l] holds value l (low nibble) and l + 16 (high).
fn unit_dot(rb: u32, u: u32, xv: u32) -> f32 {
  let w0 = (rb >> 2u) + (u >> 3u) * 34u;
  let ib = u & 7u;
  let head = W[w0];
  let ls = ((W[w0 + 1u] >> (4u * ib)) & 0xfu) | (((head >> (16u + 2u * ib)) & 3u) << 4u);
  let xb = xv + 8u * u;
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let w = W[w0 + 2u + 4u * ib + k];
    s += dot(iq4nl4(w), X[xb + k]) + dot(iq4nl4(w >> 4u), X[xb + 4u + k]);
  }
  return unpack2x16float(head).x * (f32(ls) - 32.0) * s;
}
#endif

#ifdef SUBGROUP
var<workgroup> partial: array<f32, {{WG}}>;

// The workgroup's sum of `acc`, valid in invocation 0 (call it in uniform control flow).
// Which invocations share a subgroup, and its size, are the implementation's choice: each
// subgroup leaves its sum in its first lane's slot (the other slots 0), then every subgroup
// adds all the slots, each lane those a subgroup's width apart from its own index.
fn workgroup_sum(acc: f32, lid: u32, sid: u32, width: u32) -> f32 {
  let part = subgroupAdd(acc);
  partial[lid] = select(0.0, part, sid == 0u);
  workgroupBarrier();
  var t = 0.0;
  for (var j = sid; j < {{WG}}u; j += width) {
    t += partial[j];
  }
  return subgroupAdd(t);
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
#ifdef SUBGROUP
@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_invocation_id) sid: u32,
  @builtin(subgroup_size) width: u32,
) {
  let r = wid.x + wid.y * P.grid_x;
  if (r >= P.rows) {
    return; // uniform across the workgroup
  }
  let rb = r * P.row_bytes;
  var acc = 0.0;
  for (var u = lid; u < P.units; u += {{WG}}u) {
    acc += unit_dot(rb, u, P.x_offset);
  }
  let total = workgroup_sum(acc, lid, sid, width);
  if (lid == 0u) {
    finish(r, total);
  }
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
#endif
