// Prefill matmul for llvmpipe: Y[t][r] (+)= dot(row r of W, X[t]) over one chunk
// of columns, for a tile of up to 8 tokens t, 4 rows r per invocation.
// Why this shape (see matvec_rows4.wgsl for the weight side): llvmpipe turns a
// storage load whose address differs per lane into a per-lane loop, and a
// uniform load into a scalar load + broadcast only when its offset is a
// compile-time constant (Mesa's nir_src_is_always_uniform); any other uniform
// load is a gather. So:
//   - W is read as vec4<u32> (16 bytes per per-lane load), 4 rows side by side
//     in vec4 lanes, each word decoded once and used for all 8 tokens;
//   - the x tile sits in a uniform window (token k at vec4 k * XS) filled by the
//     COPY_X entry, and the STEPS 256-value steps of a chunk are unrolled by
//     calling `step` with literal arguments, so every x offset is a constant;
//   - 8 accumulators (one vec4 of 4 rows per token) stay in registers.
// Weight types by define: W_Q4_0 (8 blocks = 144 bytes = 9 vec4 per step),
// W_Q4_K (one 144-byte super-block per step).
// Defines: WG, STEPS (steps in this chunk), XS (x vec4s per token in the
// window), STEP_CALLS (the unrolled calls), optional BIAS; COPY_X selects the
// copy entry.

struct Params {
  rows: u32,      // rows in this weight buffer
  row_vec4: u32,  // vec4<u32> per row
  w_step: u32,    // vec4 offset of this chunk's first step in a row
  t0: u32,        // first token of the tile
  n: u32,         // tokens in all (rewritten at encode time)
  y_offset: u32,  // column of Y for this buffer's first row
  y_stride: u32,  // floats per token row of Y
  bias_offset: u32,
  flags: u32,     // 1: add bias, 2: add Y (accumulate, or a chunk after the first)
  cols4: u32,     // COPY_X: x row length in vec4s
  chunks: u32,    // COPY_X: chunks in the window buffer
  pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;

#ifdef COPY_X
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> XC: array<vec4<f32>>;

// Window layout: chunk c, token k, vec4 i at (c * TILE + k) * XS + i; columns past
// the row and tokens past n are filled so every read stays defined.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  if (g >= P.chunks * {{TILE}}u * {{XS}}u) {
    return;
  }
  let c = g / ({{TILE}}u * {{XS}}u);
  let k = (g / {{XS}}u) % {{TILE}}u;
  let col4 = c * {{XS}}u + g % {{XS}}u;
  let t = min(P.t0 + k, P.n - 1u);
  var v = vec4<f32>(0.0);
  if (col4 < P.cols4) {
    v = X[t * P.cols4 + col4];
  }
  XC[g] = v;
}
#else

@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> XU: array<vec4<f32>, {{XV4}}>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> B: array<f32>;
#endif

const M4 = vec4<u32>(15u);

var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;
var<private> acc4: vec4<f32>;
var<private> acc5: vec4<f32>;
var<private> acc6: vec4<f32>;
var<private> acc7: vec4<f32>;

// Four consecutive values (w0..w3, each a vec4 of 4 rows) against x vec4 xi
// of every token; xi is a literal after inlining.
fn quad(w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>, xi: u32) {
  acc0 = dot4(w0, w1, w2, w3, XU[xi], acc0);
  acc1 = dot4(w0, w1, w2, w3, XU[xi + {{XS}}u], acc1);
  acc2 = dot4(w0, w1, w2, w3, XU[xi + 2u * {{XS}}u], acc2);
  acc3 = dot4(w0, w1, w2, w3, XU[xi + 3u * {{XS}}u], acc3);
#ifdef T5
  acc4 = dot4(w0, w1, w2, w3, XU[xi + 4u * {{XS}}u], acc4);
#endif
#ifdef T6
  acc5 = dot4(w0, w1, w2, w3, XU[xi + 5u * {{XS}}u], acc5);
#endif
#ifdef T7
  acc6 = dot4(w0, w1, w2, w3, XU[xi + 6u * {{XS}}u], acc6);
#endif
#ifdef T8
  acc7 = dot4(w0, w1, w2, w3, XU[xi + 7u * {{XS}}u], acc7);
#endif
}

// a + w0 x.x + w1 x.y + w2 x.z + w3 x.w as a chain of fused multiply-adds.
fn dot4(w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>, x: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
  return fma(w3, vec4<f32>(x.w), fma(w2, vec4<f32>(x.z), fma(w1, vec4<f32>(x.y), fma(w0, vec4<f32>(x.x), a))));
}

// Nibble at bit `sh` of each row's word, scaled: a * q + b.
fn deq(q: vec4<u32>, sh: u32, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>((q >> vec4<u32>(sh)) & M4), a, b);
}

// One nibble word of 4 rows: low nibbles are values xl*4.., high ones xh*4...
fn word(q: vec4<u32>, la: vec4<f32>, lb: vec4<f32>, ha: vec4<f32>, hb: vec4<f32>, xl: u32, xh: u32) {
  quad(deq(q, 0u, la, lb), deq(q, 8u, la, lb), deq(q, 16u, la, lb), deq(q, 24u, la, lb), xl);
  quad(deq(q, 4u, ha, hb), deq(q, 12u, ha, hb), deq(q, 20u, ha, hb), deq(q, 28u, ha, hb), xh);
}

fn f16lo(w: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(
    unpack2x16float(w.x).x,
    unpack2x16float(w.y).x,
    unpack2x16float(w.z).x,
    unpack2x16float(w.w).x,
  );
}

fn f16hi(w: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(
    unpack2x16float(w.x).y,
    unpack2x16float(w.y).y,
    unpack2x16float(w.z).y,
    unpack2x16float(w.w).y,
  );
}

// Component i of 4 rows' vec4s: the same weight word of rows r0..r0+3.
fn t4(a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, d: vec4<u32>, i: u32) -> vec4<u32> {
  return vec4<u32>(a[i], b[i], c[i], d[i]);
}

#ifdef W_Q4_0
// The upper half of word w and the lower half of word n, joined.
fn join(w: vec4<u32>, n: vec4<u32>) -> vec4<u32> {
  return (w >> vec4<u32>(16u)) | (n << vec4<u32>(16u));
}

// 18-byte blocks: f16 d, 16 nibble bytes (low = value j, high = value j + 16);
// value = d q - 8 d.
fn block(q0: vec4<u32>, q1: vec4<u32>, q2: vec4<u32>, q3: vec4<u32>, d: vec4<f32>, xb: u32) {
  let m = -8.0 * d;
  word(q0, d, m, d, m, xb, xb + 4u);
  word(q1, d, m, d, m, xb + 1u, xb + 5u);
  word(q2, d, m, d, m, xb + 2u, xb + 6u);
  word(q3, d, m, d, m, xb + 3u, xb + 7u);
}

// A pair of blocks is 9 words: block 2p starts at word 9p (its nibbles straddle
// words), block 2p+1 at byte 2 of word 9p+4 (its nibbles aligned).
fn pair(
  w0: vec4<u32>, w1: vec4<u32>, w2: vec4<u32>, w3: vec4<u32>, w4: vec4<u32>,
  w5: vec4<u32>, w6: vec4<u32>, w7: vec4<u32>, w8: vec4<u32>, xb: u32,
) {
  block(join(w0, w1), join(w1, w2), join(w2, w3), join(w3, w4), f16lo(w0), xb);
  block(w5, w6, w7, w8, f16hi(w4), xb + 8u);
}
#endif

#ifdef W_Q4_K
// Scale (x) and min (y) of sub-block `sub` for 4 rows, from scale words s0..s2.
fn k_scale(s0: vec4<u32>, s2: vec4<u32>, sub: u32) -> vec4<f32> {
  if (sub < 4u) {
    return vec4<f32>((s0 >> vec4<u32>(8u * sub)) & vec4<u32>(63u));
  }
  let sh = 8u * (sub - 4u);
  return vec4<f32>(((s2 >> vec4<u32>(sh)) & M4) |
    (((s0 >> vec4<u32>(sh + 6u)) & vec4<u32>(3u)) << vec4<u32>(4u)));
}

fn k_min(s1: vec4<u32>, s2: vec4<u32>, sub: u32) -> vec4<f32> {
  if (sub < 4u) {
    return vec4<f32>((s1 >> vec4<u32>(8u * sub)) & vec4<u32>(63u));
  }
  let sh = 8u * (sub - 4u);
  return vec4<f32>(((s2 >> vec4<u32>(sh + 4u)) & M4) |
    (((s1 >> vec4<u32>(sh + 6u)) & vec4<u32>(3u)) << vec4<u32>(4u)));
}

// 64-value group j: 8 nibble words (p = words 0..3, q = words 4..7 of each row
// a..d); low nibbles are sub-block 2j (values 4i + b), high ones 2j + 1.
// value = d sc q - dmin m.
fn kgroup(
  pa: vec4<u32>, qa: vec4<u32>, pb: vec4<u32>, qb: vec4<u32>,
  pc: vec4<u32>, qc: vec4<u32>, pd: vec4<u32>, qd: vec4<u32>,
  d: vec4<f32>, dmin: vec4<f32>, s0: vec4<u32>, s1: vec4<u32>, s2: vec4<u32>, j: u32, xb: u32,
) {
  let la = d * k_scale(s0, s2, 2u * j);
  let lb = -dmin * k_min(s1, s2, 2u * j);
  let ha = d * k_scale(s0, s2, 2u * j + 1u);
  let hb = -dmin * k_min(s1, s2, 2u * j + 1u);
  word(t4(pa, pb, pc, pd, 0u), la, lb, ha, hb, xb, xb + 8u);
  word(t4(pa, pb, pc, pd, 1u), la, lb, ha, hb, xb + 1u, xb + 9u);
  word(t4(pa, pb, pc, pd, 2u), la, lb, ha, hb, xb + 2u, xb + 10u);
  word(t4(pa, pb, pc, pd, 3u), la, lb, ha, hb, xb + 3u, xb + 11u);
  word(t4(qa, qb, qc, qd, 0u), la, lb, ha, hb, xb + 4u, xb + 12u);
  word(t4(qa, qb, qc, qd, 1u), la, lb, ha, hb, xb + 5u, xb + 13u);
  word(t4(qa, qb, qc, qd, 2u), la, lb, ha, hb, xb + 6u, xb + 14u);
  word(t4(qa, qb, qc, qd, 3u), la, lb, ha, hb, xb + 7u, xb + 15u);
}
#endif

// Step s of the chunk (256 values, 144 bytes per row) for rows at vec4 offsets
// i0..i3; s is a literal in every call, so x offsets 64 s + ... are constants.
fn step(s: u32, i0: u32, i1: u32, i2: u32, i3: u32) {
  let o = P.w_step + 9u * s;
  let xb = 64u * s;
  let a0 = W[i0 + o];
  let a1 = W[i0 + o + 1u];
  let a2 = W[i0 + o + 2u];
  let a3 = W[i0 + o + 3u];
  let a4 = W[i0 + o + 4u];
  let a5 = W[i0 + o + 5u];
  let a6 = W[i0 + o + 6u];
  let a7 = W[i0 + o + 7u];
  let a8 = W[i0 + o + 8u];
  let b0 = W[i1 + o];
  let b1 = W[i1 + o + 1u];
  let b2 = W[i1 + o + 2u];
  let b3 = W[i1 + o + 3u];
  let b4 = W[i1 + o + 4u];
  let b5 = W[i1 + o + 5u];
  let b6 = W[i1 + o + 6u];
  let b7 = W[i1 + o + 7u];
  let b8 = W[i1 + o + 8u];
  let c0 = W[i2 + o];
  let c1 = W[i2 + o + 1u];
  let c2 = W[i2 + o + 2u];
  let c3 = W[i2 + o + 3u];
  let c4 = W[i2 + o + 4u];
  let c5 = W[i2 + o + 5u];
  let c6 = W[i2 + o + 6u];
  let c7 = W[i2 + o + 7u];
  let c8 = W[i2 + o + 8u];
  let d0 = W[i3 + o];
  let d1 = W[i3 + o + 1u];
  let d2 = W[i3 + o + 2u];
  let d3 = W[i3 + o + 3u];
  let d4 = W[i3 + o + 4u];
  let d5 = W[i3 + o + 5u];
  let d6 = W[i3 + o + 6u];
  let d7 = W[i3 + o + 7u];
  let d8 = W[i3 + o + 8u];
#ifdef W_Q4_0
  // Word k of the step is component k % 4 of vec4 k / 4.
  pair(
    t4(a0, b0, c0, d0, 0u), t4(a0, b0, c0, d0, 1u), t4(a0, b0, c0, d0, 2u),
    t4(a0, b0, c0, d0, 3u), t4(a1, b1, c1, d1, 0u), t4(a1, b1, c1, d1, 1u),
    t4(a1, b1, c1, d1, 2u), t4(a1, b1, c1, d1, 3u), t4(a2, b2, c2, d2, 0u), xb,
  );
  pair(
    t4(a2, b2, c2, d2, 1u), t4(a2, b2, c2, d2, 2u), t4(a2, b2, c2, d2, 3u),
    t4(a3, b3, c3, d3, 0u), t4(a3, b3, c3, d3, 1u), t4(a3, b3, c3, d3, 2u),
    t4(a3, b3, c3, d3, 3u), t4(a4, b4, c4, d4, 0u), t4(a4, b4, c4, d4, 1u), xb + 16u,
  );
  pair(
    t4(a4, b4, c4, d4, 2u), t4(a4, b4, c4, d4, 3u), t4(a5, b5, c5, d5, 0u),
    t4(a5, b5, c5, d5, 1u), t4(a5, b5, c5, d5, 2u), t4(a5, b5, c5, d5, 3u),
    t4(a6, b6, c6, d6, 0u), t4(a6, b6, c6, d6, 1u), t4(a6, b6, c6, d6, 2u), xb + 32u,
  );
  pair(
    t4(a6, b6, c6, d6, 3u), t4(a7, b7, c7, d7, 0u), t4(a7, b7, c7, d7, 1u),
    t4(a7, b7, c7, d7, 2u), t4(a7, b7, c7, d7, 3u), t4(a8, b8, c8, d8, 0u),
    t4(a8, b8, c8, d8, 1u), t4(a8, b8, c8, d8, 2u), t4(a8, b8, c8, d8, 3u), xb + 48u,
  );
#endif
#ifdef W_Q4_K
  let dm = t4(a0, b0, c0, d0, 0u);
  let s0 = t4(a0, b0, c0, d0, 1u);
  let s1 = t4(a0, b0, c0, d0, 2u);
  let s2 = t4(a0, b0, c0, d0, 3u);
  let d = f16lo(dm);
  let dmin = f16hi(dm);
  kgroup(a1, a2, b1, b2, c1, c2, d1, d2, d, dmin, s0, s1, s2, 0u, xb);
  kgroup(a3, a4, b3, b4, c3, c4, d3, d4, d, dmin, s0, s1, s2, 1u, xb + 16u);
  kgroup(a5, a6, b5, b6, c5, c6, d5, d6, d, dmin, s0, s1, s2, 2u, xb + 32u);
  kgroup(a7, a8, b7, b8, c7, c8, d7, d8, d, dmin, s0, s1, s2, 3u, xb + 48u);
#endif
}

fn finish(t: u32, r: u32, v: f32) {
  let at = t * P.y_stride + P.y_offset + r;
  var s = v;
#ifdef BIAS
  if ((P.flags & 1u) != 0u) {
    s += B[P.bias_offset + r];
  }
#endif
  if ((P.flags & 2u) != 0u) {
    s += Y[at];
  }
  Y[at] = s;
}

// Token t0 + k's 4 sums, for the rows that exist.
fn finish4(k: u32, r0: u32, last: u32, a: vec4<f32>) {
  let t = P.t0 + k;
  if (t >= P.n) {
    return;
  }
  finish(t, r0, a.x);
  if (r0 + 1u <= last) {
    finish(t, r0 + 1u, a.y);
  }
  if (r0 + 2u <= last) {
    finish(t, r0 + 2u, a.z);
  }
  if (r0 + 3u <= last) {
    finish(t, r0 + 3u, a.w);
  }
}

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = gid.x * 4u;
  if (r0 >= P.rows) {
    return;
  }
  // Rows past the end re-read the last row; their sums are dropped.
  let last = P.rows - 1u;
  let i0 = r0 * P.row_vec4;
  let i1 = min(r0 + 1u, last) * P.row_vec4;
  let i2 = min(r0 + 2u, last) * P.row_vec4;
  let i3 = min(r0 + 3u, last) * P.row_vec4;
  {{STEP_CALLS}}
  finish4(0u, r0, last, acc0);
  finish4(1u, r0, last, acc1);
  finish4(2u, r0, last, acc2);
  finish4(3u, r0, last, acc3);
#ifdef T5
  finish4(4u, r0, last, acc4);
#endif
#ifdef T6
  finish4(5u, r0, last, acc5);
#endif
#ifdef T7
  finish4(6u, r0, last, acc6);
#endif
#ifdef T8
  finish4(7u, r0, last, acc7);
#endif
}
#endif
