// Matvec for llvmpipe (decode): y[r] = dot(row r of W, x) (+ bias[r]) (+ y[r]),
// W in the rows4 texture layout (see rows4-layout.ts): each invocation computes
// the 4 rows of one texture row, component c of every texel being row 4g + c,
// so one fetch brings a word of 4 rows and all math runs on vec4s of rows.
// Why this shape, measured with tests/bench/webgpu-matvec.ts on llvmpipe:
//   - texel fetches are vectorised gathers; storage loads are per-lane loops;
//   - x sits in a uniform buffer (all lanes read the same x: a scalar load);
//   - a nibble is used where it lies in its word, unshifted: f32(q & (15 << b))
//     = q_n * 2^b, so the COPY_X entry stores each x pre-scaled by 2^-b of the
//     nibble it meets (exact: powers of two), which saves a shift per weight.
//     The top nibble (b = 28) is read with a shift instead, so f32() of the
//     masked word never sees bit 31.
//   - COPY_X also stores the sum of every 32 x values, for the Q4_0 offset
//     (q - 8) and the Q4_K mins.
// Weight types by define: W_Q4_0, W_Q4_K (each 9 texels per 64 values).
// Defines: WG, XU_VEC4 (x capacity in vec4s), XS_VEC4 (sums capacity in vec4s),
// HALF (COPY_X: 16 for Q4_0, 32 for Q4_K), optional BIAS, ACCUMULATE.

struct Params {
  rows: u32,      // rows in this texture
  steps: u32,     // 256-value steps per row
  x_offset: u32,  // COPY_X: first x value, in vec4s
  x_vec4: u32,    // COPY_X: x length in vec4s
  y_offset: u32,  // y index of this texture's first row
  bias_offset: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;

#ifdef COPY_X
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> XC: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> XS: array<f32>;

// Scale of value 4i + c against the nibble at bit 8c (low half of a group) or
// 8c + 4 (high half); 1 for the top nibble, which the kernel shifts down.
const LO_SCALE = vec4<f32>(1.0, 1.0 / 256.0, 1.0 / 65536.0, 1.0 / 16777216.0);
const HI_SCALE = vec4<f32>(1.0 / 16.0, 1.0 / 4096.0, 1.0 / 1048576.0, 1.0);

// One invocation per 32 values (8 vec4s).
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  if (8u * b >= P.x_vec4) {
    return;
  }
  var sum = vec4<f32>(0.0);
  for (var k = 0u; k < 8u; k++) {
    let i = 8u * b + k;
    let v = X[P.x_offset + i];
    sum += v;
    let high = (4u * i) % (2u * {{HALF}}u) >= {{HALF}}u;
    XC[i] = select(LO_SCALE, HI_SCALE, high) * v;
  }
  XS[b] = dot(sum, vec4<f32>(1.0));
}
#else

@group(0) @binding(1) var W: texture_2d<u32>;
#include "rows4_common.wgsl"
@group(0) @binding(2) var<uniform> XU: array<vec4<f32>, {{XU_VEC4}}>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> B: array<f32>;
#endif
@group(0) @binding(6) var<uniform> XSU: array<vec4<f32>, {{XS_VEC4}}>;

// a + the 4 low nibbles of q (4 rows) against pre-scaled x values x.
fn dot_lo(q: vec4<u32>, x: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
  let s = fma(mk(q, 0x0000000fu), vec4<f32>(x.x), a);
  let t = fma(mk(q, 0x00000f00u), vec4<f32>(x.y), s);
  let u = fma(mk(q, 0x000f0000u), vec4<f32>(x.z), t);
  return fma(mk(q, 0x0f000000u), vec4<f32>(x.w), u);
}

// a + the 4 high nibbles of q against pre-scaled x values x.
fn dot_hi(q: vec4<u32>, x: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
  let s = fma(mk(q, 0x000000f0u), vec4<f32>(x.x), a);
  let t = fma(mk(q, 0x0000f000u), vec4<f32>(x.y), s);
  let u = fma(mk(q, 0x00f00000u), vec4<f32>(x.z), t);
  return fma(vec4<f32>(q >> vec4<u32>(28u)), vec4<f32>(x.w), u);
}

// Sum of the 32 x values at sum index i (values 32i ..).
fn xsum(i: u32) -> f32 {
  return XSU[i >> 2u][i & 3u];
}

#ifdef W_Q4_0
// acc + one 32-value block: 4 nibble texels from t, x from vec4 xb, scale d,
// x sum at sum index si. sum d (q - 8) x = d (sum q x - 8 sum x).
// (Written out rather than looped: llvmpipe keeps per-lane loop masks, which cost
// as much as the body of a short loop.)
fn block(g: u32, t: u32, xb: u32, si: u32, d: vec4<f32>, acc: vec4<f32>) -> vec4<f32> {
  let q0 = ld(g, t);
  var s = dot_hi(q0, XU[xb + 4u], dot_lo(q0, XU[xb], vec4<f32>(0.0)));
  let q1 = ld(g, t + 1u);
  s = dot_hi(q1, XU[xb + 5u], dot_lo(q1, XU[xb + 1u], s));
  let q2 = ld(g, t + 2u);
  s = dot_hi(q2, XU[xb + 6u], dot_lo(q2, XU[xb + 2u], s));
  let q3 = ld(g, t + 3u);
  s = dot_hi(q3, XU[xb + 7u], dot_lo(q3, XU[xb + 3u], s));
  return fma(d, s - vec4<f32>(8.0 * xsum(si)), acc);
}

// Pair p of a step: a scale texel and 8 nibble texels.
fn pair(g: u32, s: u32, p: u32, acc: vec4<f32>) -> vec4<f32> {
  let t = 36u * s + 9u * p;
  let xb = 64u * s + 16u * p;
  let si = 8u * s + 2u * p;
  let sc = ld(g, t);
  let a = block(g, t + 1u, xb, si, f16lo(sc), acc);
  return block(g, t + 5u, xb + 8u, si + 1u, f16hi(sc), a);
}

// One 256-value step: 4 pairs of blocks.
fn step(g: u32, s: u32, acc: vec4<f32>) -> vec4<f32> {
  return pair(g, s, 3u, pair(g, s, 2u, pair(g, s, 1u, pair(g, s, 0u, acc))));
}
#endif

#ifdef W_Q4_K
// Nibble texels t .. t+7 of one 64-value group against x from vec4 xb:
// (sum q x over the low nibbles, over the high nibbles), per row.
struct Sums {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

fn kword(g: u32, t: u32, xb: u32, a: Sums) -> Sums {
  let q = ld(g, t);
  return Sums(dot_lo(q, XU[xb], a.lo), dot_hi(q, XU[xb + 8u], a.hi));
}

fn kgroup(g: u32, t: u32, xb: u32) -> Sums {
  let z = vec4<f32>(0.0);
  let a = kword(g, t + 3u, xb + 3u, kword(g, t + 2u, xb + 2u, kword(g, t + 1u, xb + 1u, kword(g, t, xb, Sums(z, z)))));
  return kword(g, t + 7u, xb + 7u, kword(g, t + 6u, xb + 6u, kword(g, t + 5u, xb + 5u, kword(g, t + 4u, xb + 4u, a))));
}

// Group j (64 values) of super-block s: low nibbles are sub-block 2j, high 2j + 1.
// value = d sc q - dmin m.
fn kstep(g: u32, s: u32, j: u32, dm: vec4<u32>, s0: vec4<u32>, s1: vec4<u32>, s2: vec4<u32>, acc: vec4<f32>) -> vec4<f32> {
  let q = kgroup(g, 36u * s + 4u + 8u * j, 64u * s + 16u * j);
  let lo = 2u * j;
  let si = 8u * s + lo;
  let sc = k_scale(s0, s2, lo) * q.lo + k_scale(s0, s2, lo + 1u) * q.hi;
  let mn = k_min(s1, s2, lo) * xsum(si) + k_min(s1, s2, lo + 1u) * xsum(si + 1u);
  return fma(f16lo(dm), sc, acc) - f16hi(dm) * mn;
}

// One super-block: d | dmin, 3 words of 6-bit scales and mins, 4 groups.
fn step(g: u32, s: u32, acc: vec4<f32>) -> vec4<f32> {
  let t = 36u * s;
  let dm = ld(g, t);
  let s0 = ld(g, t + 1u);
  let s1 = ld(g, t + 2u);
  let s2 = ld(g, t + 3u);
  let a = kstep(g, s, 1u, dm, s0, s1, s2, kstep(g, s, 0u, dm, s0, s1, s2, acc));
  return kstep(g, s, 3u, dm, s0, s1, s2, kstep(g, s, 2u, dm, s0, s1, s2, a));
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

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let r0 = 4u * g;
  if (r0 >= P.rows) {
    return;
  }
  var acc = vec4<f32>(0.0);
  for (var s = 0u; s < P.steps; s++) {
    acc = step(g, s, acc);
  }
  // Rows past the end are zeros in the texture; their sums are dropped.
  finish(r0, acc.x);
  if (r0 + 1u < P.rows) {
    finish(r0 + 1u, acc.y);
  }
  if (r0 + 2u < P.rows) {
    finish(r0 + 2u, acc.z);
  }
  if (r0 + 3u < P.rows) {
    finish(r0 + 3u, acc.w);
  }
}
#endif
