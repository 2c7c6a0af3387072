// Prefill: Y[t][r] = dot(row r of W, X[t]) (+ bias[r]) (+ Y[t][r] when ACCUMULATE)
// for n tokens t. Each invocation owns one weight row and a tile of TILE tokens:
// it decodes a unit of the row once into `dq` and dots it with the TILE token
// vectors, so each weight block is read and decoded once per token tile.
// Weight types by define as in matvec.wgsl: W_F32, W_F16, W_BF16, W_Q8_0,
// W_Q4_0, W_Q4_K, W_Q5_K, W_Q6_K, W_Q5_0, W_Q5_1, W_IQ4_NL, W_MXFP4, W_Q2_K,
// W_Q3_K, W_IQ4_XS. A unit is UNIT_VEC4 consecutive vec4s of a row: 1 for
// floats, 8 (one block) for Q8_0/Q4_0/Q5_0/Q5_1/IQ4_NL/MXFP4, 16 (64 values)
// for Q4_K/Q5_K, 32 (a 128-value half block) for Q6_K, 8 (a 32-value group,
// as in matvec.wgsl) for Q2_K/Q3_K/IQ4_XS.
// Defines: WG, TILE, UNIT_VEC4, optional BIAS, ACCUMULATE.

struct Params {
  rows: u32,      // rows in this weight buffer
  cols: u32,
  row_bytes: u32,
  units: u32,     // units per row
  n: u32,         // tokens
  y_offset: u32,  // column of Y for this buffer's first row
  y_stride: u32,  // floats per token row of Y
  bias_offset: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> B: array<f32>;
#endif

var<private> dq: array<vec4<f32>, {{UNIT_VEC4}}>;

#include "ggml_words.wgsl"

fn nib_lo(w: u32) -> vec4<f32> {
  return vec4<f32>(unpack4xU8(w & 0x0f0f0f0fu));
}

fn nib_hi(w: u32) -> vec4<f32> {
  return vec4<f32>(unpack4xU8((w >> 4u) & 0x0f0f0f0fu));
}

#ifdef W_F32
fn decode_unit(rb: u32, u: u32) {
  let i = (rb >> 2u) + 4u * u;
  dq[0] = bitcast<vec4<f32>>(vec4<u32>(W[i], W[i + 1u], W[i + 2u], W[i + 3u]));
}
#endif

#ifdef W_F16
fn decode_unit(rb: u32, u: u32) {
  let i = (rb >> 2u) + 2u * u;
  dq[0] = vec4<f32>(unpack2x16float(W[i]), unpack2x16float(W[i + 1u]));
}
#endif

#ifdef W_BF16
fn decode_unit(rb: u32, u: u32) {
  let i = (rb >> 2u) + 2u * u;
  dq[0] = vec4<f32>(bf16x2(W[i]), bf16x2(W[i + 1u]));
}
#endif

#ifdef W_Q8_0
fn decode_unit(rb: u32, u: u32) {
  let b = rb + u * 34u;
  let d = h16(b);
  for (var k = 0u; k < 8u; k++) {
    dq[k] = d * vec4<f32>(unpack4xI8(w2(b + 2u + 4u * k)));
  }
}
#endif

#ifdef W_Q4_0
fn decode_unit(rb: u32, u: u32) {
  let b = rb + u * 18u;
  let d = h16(b);
  for (var k = 0u; k < 4u; k++) {
    let w = w2(b + 2u + 4u * k);
    dq[k] = d * (nib_lo(w) - 8.0);
    dq[k + 4u] = d * (nib_hi(w) - 8.0);
  }
}
#endif

#ifdef W_Q4_K
fn decode_unit(rb: u32, u: u32) {
  let j = u & 3u;
  let w0 = (rb >> 2u) + (u >> 2u) * 36u;
  let dm = unpack2x16float(W[w0]);
  let lo = k_scale_min(W[w0 + 1u], W[w0 + 2u], W[w0 + 3u], 2u * j);
  let hi = k_scale_min(W[w0 + 1u], W[w0 + 2u], W[w0 + 3u], 2u * j + 1u);
  for (var k = 0u; k < 8u; k++) {
    let w = W[w0 + 4u + 8u * j + k];
    dq[k] = dm.x * lo.x * nib_lo(w) - dm.y * lo.y;
    dq[k + 8u] = dm.x * hi.x * nib_hi(w) - dm.y * hi.y;
  }
}
#endif

#ifdef W_Q5_K
fn decode_unit(rb: u32, u: u32) {
  let j = u & 3u;
  let w0 = (rb >> 2u) + (u >> 2u) * 44u;
  let dm = unpack2x16float(W[w0]);
  let lo = k_scale_min(W[w0 + 1u], W[w0 + 2u], W[w0 + 3u], 2u * j);
  let hi = k_scale_min(W[w0 + 1u], W[w0 + 2u], W[w0 + 3u], 2u * j + 1u);
  for (var k = 0u; k < 8u; k++) {
    let w = W[w0 + 12u + 8u * j + k];
    let h = W[w0 + 4u + k] >> (2u * j);
    let vl = nib_lo(w) + 16.0 * vec4<f32>(unpack4xU8(h & 0x01010101u));
    let vh = nib_hi(w) + 16.0 * vec4<f32>(unpack4xU8((h >> 1u) & 0x01010101u));
    dq[k] = dm.x * lo.x * vl - dm.y * lo.y;
    dq[k + 8u] = dm.x * hi.x * vh - dm.y * hi.y;
  }
}
#endif

#ifdef W_Q6_K
// Unit u = half h of block u / 2: values 128h + {l, l+32, l+64, l+96}, l < 32.
fn decode_unit(rb: u32, u: u32) {
  let h = u & 1u;
  let b = rb + (u >> 1u) * 210u;
  let d = h16(b + 208u);
  let qlb = b + 64u * h;
  let qhb = b + 128u + 32u * h;
  let sc = b + 192u + 8u * h;
  for (var k = 0u; k < 8u; k++) {
    let g = k >> 2u; // l / 16
    let a = w2(qlb + 4u * k);
    let c = w2(qlb + 32u + 4u * k);
    let e = w2(qhb + 4u * k);
    let q1 = (a & 0x0f0f0f0fu) | ((e & 0x03030303u) << 4u);
    let q2 = (c & 0x0f0f0f0fu) | (((e >> 2u) & 0x03030303u) << 4u);
    let q3 = ((a >> 4u) & 0x0f0f0f0fu) | (((e >> 4u) & 0x03030303u) << 4u);
    let q4 = ((c >> 4u) & 0x0f0f0f0fu) | (((e >> 6u) & 0x03030303u) << 4u);
    dq[k] = d * i8f(b8(sc + g)) * (vec4<f32>(unpack4xU8(q1)) - 32.0);
    dq[k + 8u] = d * i8f(b8(sc + g + 2u)) * (vec4<f32>(unpack4xU8(q2)) - 32.0);
    dq[k + 16u] = d * i8f(b8(sc + g + 4u)) * (vec4<f32>(unpack4xU8(q3)) - 32.0);
    dq[k + 24u] = d * i8f(b8(sc + g + 6u)) * (vec4<f32>(unpack4xU8(q4)) - 32.0);
  }
}
#endif

#ifdef W_Q5_0
fn decode_unit(rb: u32, u: u32) {
  let b = rb + u * 22u;
  let d = h16(b);
  let qh = w2(b + 2u);
  for (var k = 0u; k < 4u; k++) {
    let w = w2(b + 6u + 4u * k);
    let vl = (w & 0x0f0f0f0fu) | (bits4(qh >> (4u * k)) << 4u);
    let vh = ((w >> 4u) & 0x0f0f0f0fu) | (bits4(qh >> (16u + 4u * k)) << 4u);
    dq[k] = d * (vec4<f32>(unpack4xU8(vl)) - 16.0);
    dq[k + 4u] = d * (vec4<f32>(unpack4xU8(vh)) - 16.0);
  }
}
#endif

#ifdef W_Q5_1
fn decode_unit(rb: u32, u: u32) {
  let w0 = (rb >> 2u) + u * 6u;
  let dm = unpack2x16float(W[w0]);
  let qh = W[w0 + 1u];
  for (var k = 0u; k < 4u; k++) {
    let w = W[w0 + 2u + k];
    let vl = (w & 0x0f0f0f0fu) | (bits4(qh >> (4u * k)) << 4u);
    let vh = ((w >> 4u) & 0x0f0f0f0fu) | (bits4(qh >> (16u + 4u * k)) << 4u);
    dq[k] = dm.x * vec4<f32>(unpack4xU8(vl)) + dm.y;
    dq[k + 4u] = dm.x * vec4<f32>(unpack4xU8(vh)) + dm.y;
  }
}
#endif

#ifdef W_IQ4_NL
fn decode_unit(rb: u32, u: u32) {
  let b = rb + u * 18u;
  let d = h16(b);
  for (var k = 0u; k < 4u; k++) {
    let w = w2(b + 2u + 4u * k);
    dq[k] = d * iq4nl4(w);
    dq[k + 4u] = d * iq4nl4(w >> 4u);
  }
}
#endif

#ifdef W_MXFP4
fn decode_unit(rb: u32, u: u32) {
  let b = rb + u * 17u;
  let d = e8m0_half(b8(b));
  for (var k = 0u; k < 4u; k++) {
    let w = w1(b + 1u + 4u * k);
    dq[k] = d * fp4x4(w);
    dq[k + 4u] = d * fp4x4(w >> 4u);
  }
}
#endif

#ifdef W_Q2_K
// Unit u = (block u / 8, n, j): values 128n + 32j + l, see matvec.wgsl.
fn decode_unit(rb: u32, u: u32) {
  let w0 = (rb >> 2u) + (u >> 3u) * 21u;
  let n = (u >> 2u) & 1u;
  let j = u & 3u;
  let is = 8u * n + 2u * j;
  let sc = W[w0 + (is >> 2u)] >> (8u * (is & 3u));
  let dm = unpack2x16float(W[w0 + 20u]);
  let d0 = dm.x * f32(sc & 0xfu);
  let m0 = dm.y * f32((sc >> 4u) & 0xfu);
  let d1 = dm.x * f32((sc >> 8u) & 0xfu);
  let m1 = dm.y * f32((sc >> 12u) & 0xfu);
  for (var k = 0u; k < 4u; k++) {
    let q0 = (W[w0 + 4u + 8u * n + k] >> (2u * j)) & 0x03030303u;
    let q1 = (W[w0 + 8u + 8u * n + k] >> (2u * j)) & 0x03030303u;
    dq[k] = d0 * vec4<f32>(unpack4xU8(q0)) - m0;
    dq[k + 4u] = d1 * vec4<f32>(unpack4xU8(q1)) - m1;
  }
}
#endif

#ifdef W_Q3_K
// Unit u = (block u / 8, n, j) as for Q2_K, see matvec.wgsl.
fn decode_unit(rb: u32, u: u32) {
  let b = rb + (u >> 3u) * 110u;
  let n = (u >> 2u) & 1u;
  let j = u & 3u;
  let is = 8u * n + 2u * j;
  let d = h16(b + 108u);
  let d0 = d * q3k_scale(b + 96u, is);
  let d1 = d * q3k_scale(b + 96u, is + 1u);
  for (var k = 0u; k < 4u; k++) {
    let q0 = ((w2(b + 32u + 32u * n + 4u * k) >> (2u * j)) & 0x03030303u) |
      (((w2(b + 4u * k) >> (4u * n + j)) & 0x01010101u) << 2u);
    let q1 = ((w2(b + 48u + 32u * n + 4u * k) >> (2u * j)) & 0x03030303u) |
      (((w2(b + 16u + 4u * k) >> (4u * n + j)) & 0x01010101u) << 2u);
    dq[k] = d0 * (vec4<f32>(unpack4xU8(q0)) - 4.0);
    dq[k + 4u] = d1 * (vec4<f32>(unpack4xU8(q1)) - 4.0);
  }
}
#endif

#ifdef W_IQ4_XS
// Unit u = sub-block u % 8 of block u / 8, see matvec.wgsl.
fn decode_unit(rb: u32, u: u32) {
  let w0 = (rb >> 2u) + (u >> 3u) * 34u;
  let ib = u & 7u;
  let head = W[w0];
  let ls = ((W[w0 + 1u] >> (4u * ib)) & 0xfu) | (((head >> (16u + 2u * ib)) & 3u) << 4u);
  let dl = unpack2x16float(head).x * (f32(ls) - 32.0);
  for (var k = 0u; k < 4u; k++) {
    let w = W[w0 + 2u + 4u * ib + k];
    dq[k] = dl * iq4nl4(w);
    dq[k + 4u] = dl * iq4nl4(w >> 4u);
  }
}
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= P.rows) {
    return;
  }
  let t0 = gid.y * {{TILE}}u;
  let cols4 = P.cols / 4u;
  // Tokens past n reuse the last token's x so loads stay in bounds; their sums are dropped.
  var xrow: array<u32, {{TILE}}>;
  for (var k = 0u; k < {{TILE}}u; k++) {
    xrow[k] = min(t0 + k, P.n - 1u) * cols4;
  }
  var acc: array<f32, {{TILE}}>;
  let rb = r * P.row_bytes;
  for (var u = 0u; u < P.units; u++) {
    decode_unit(rb, u);
    let xu = u * {{UNIT_VEC4}}u;
    for (var k = 0u; k < {{TILE}}u; k++) {
      var s = 0.0;
      for (var i = 0u; i < {{UNIT_VEC4}}u; i++) {
        s += dot(dq[i], X[xrow[k] + xu + i]);
      }
      acc[k] += s;
    }
  }
  for (var k = 0u; k < {{TILE}}u; k++) {
    let t = t0 + k;
    if (t < P.n) {
      let at = t * P.y_stride + P.y_offset + r;
      var v = acc[k];
#ifdef BIAS
      v += B[P.bias_offset + r];
#endif
#ifdef ACCUMULATE
      v += Y[at];
#endif
      Y[at] = v;
    }
  }
}
