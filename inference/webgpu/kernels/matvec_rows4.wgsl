// Matvec for llvmpipe (decode): y[r] = dot(row r of W, x) (+ bias[r]) (+ y[r]),
// each invocation computing 4 consecutive rows. Why this shape, measured with
// bench-matvec.ts: llvmpipe turns every storage-buffer load whose address
// differs per lane into a per-lane loop, so
//   - W is read as vec4<u32> (16 bytes per per-lane load, rows 16-byte aligned),
//   - x sits in a uniform buffer (a branchless gather instead of that loop),
//     copied there by the COPY_X entry of this file, and
//   - one x load serves 4 rows: the rows travel side by side in vec4 lanes
//     (component i of a vec4<u32> is row r0 + i), so the nibble math is
//     vectorised across rows and x components are scalars.
// Weight types by define: W_Q4_0 (8 blocks = 144 bytes = 9 vec4 per step),
// W_Q4_K (one 144-byte super-block = 9 vec4 per step). Rows must be a whole
// number of steps (cols % 256 == 0) and x at most XU_VEC4 vec4s.
// Defines: WG, XU_VEC4, optional BIAS, ACCUMULATE; COPY_X selects the copy entry.

struct Params {
  rows: u32,      // rows in this weight buffer
  steps: u32,     // 144-byte steps per row
  row_vec4: u32,  // vec4<u32> per row
  x_offset: u32,  // first x value, in vec4s (COPY_X)
  x_vec4: u32,    // x length in vec4s (COPY_X)
  y_offset: u32,  // y index of this buffer's first row
  bias_offset: u32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;

#ifdef COPY_X
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> XC: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < P.x_vec4) {
    XC[gid.x] = X[P.x_offset + gid.x];
  }
}
#else

@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> XU: array<vec4<f32>, {{XU_VEC4}}>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> B: array<f32>;
#endif

const M4 = vec4<u32>(15u);
const ONES = vec4<f32>(1.0);

// Nibble at bit `sh` of each row's word, as f32.
fn nib(q: vec4<u32>, sh: u32) -> vec4<f32> {
  return vec4<f32>((q >> vec4<u32>(sh)) & M4);
}

// Low nibbles of word q (4 rows) against 4 x values.
fn dot_lo(q: vec4<u32>, x: vec4<f32>) -> vec4<f32> {
  return nib(q, 0u) * x.x + nib(q, 8u) * x.y + nib(q, 16u) * x.z + nib(q, 24u) * x.w;
}

fn dot_hi(q: vec4<u32>, x: vec4<f32>) -> vec4<f32> {
  return nib(q, 4u) * x.x + nib(q, 12u) * x.y + nib(q, 20u) * x.z + nib(q, 28u) * x.w;
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

// The upper half of word w and the lower half of word n, joined.
fn join(w: vec4<u32>, n: vec4<u32>) -> vec4<u32> {
  return (w >> vec4<u32>(16u)) | (n << vec4<u32>(16u));
}

#ifdef W_Q4_0
// 18-byte blocks: f16 d, 16 bytes of nibbles (low = value j, high = value j + 16).
// A pair of blocks is 9 words: block 2p starts at word 9p on a word boundary
// (its nibbles straddle words), block 2p+1 at byte 2 of word 9p+4 (its nibbles
// aligned).
fn block(q0: vec4<u32>, q1: vec4<u32>, q2: vec4<u32>, q3: vec4<u32>, xb: u32) -> vec4<f32> {
  let x0 = XU[xb];
  let x1 = XU[xb + 1u];
  let x2 = XU[xb + 2u];
  let x3 = XU[xb + 3u];
  let x4 = XU[xb + 4u];
  let x5 = XU[xb + 5u];
  let x6 = XU[xb + 6u];
  let x7 = XU[xb + 7u];
  let s = dot_lo(q0, x0) + dot_lo(q1, x1) + dot_lo(q2, x2) + dot_lo(q3, x3) +
    dot_hi(q0, x4) + dot_hi(q1, x5) + dot_hi(q2, x6) + dot_hi(q3, x7);
  // sum (q - 8) x = sum q x - 8 sum x
  return s - 8.0 * dot(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7, ONES);
}

// Two blocks from their 9 words w0..w8 (4 rows each).
fn pair(
  w0: vec4<u32>, w1: vec4<u32>, w2: vec4<u32>, w3: vec4<u32>, w4: vec4<u32>,
  w5: vec4<u32>, w6: vec4<u32>, w7: vec4<u32>, w8: vec4<u32>, xb: u32,
) -> vec4<f32> {
  let a = block(join(w0, w1), join(w1, w2), join(w2, w3), join(w3, w4), xb);
  let b = block(w5, w6, w7, w8, xb + 8u);
  return f16lo(w0) * a + f16hi(w4) * b;
}
#endif

#ifdef W_Q4_K
// 144 bytes: d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
// Scale (x) and min (y) of sub-block `sub` for 4 rows.
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

// Per row (sum q_lo x, sum q_hi x) of one column of nibble words, and x sums.
struct Part {
  ql: vec4<f32>,
  qh: vec4<f32>,
  xl: f32,
  xh: f32,
}

// Two nibble words (4 rows each) at x vec4 offsets k and 4 + k of the group.
fn kpart(w1: vec4<u32>, w2: vec4<u32>, xb: u32) -> Part {
  let a1 = XU[xb];
  let a2 = XU[xb + 4u];
  let c1 = XU[xb + 8u];
  let c2 = XU[xb + 12u];
  return Part(
    dot_lo(w1, a1) + dot_lo(w2, a2),
    dot_hi(w1, c1) + dot_hi(w2, c2),
    dot(a1 + a2, ONES),
    dot(c1 + c2, ONES),
  );
}

// 64-value group j: its 8 nibble words are vec4s p (words 0..3) and q (4..7) of
// each row (a, b, c, d); low nibbles use sub-block 2j, high 2j+1.
fn kgroup(
  pa: vec4<u32>, qa: vec4<u32>, pb: vec4<u32>, qb: vec4<u32>,
  pc: vec4<u32>, qc: vec4<u32>, pd: vec4<u32>, qd: vec4<u32>,
  dm: vec4<u32>, s0: vec4<u32>, s1: vec4<u32>, s2: vec4<u32>, j: u32, xb: u32,
) -> vec4<f32> {
  let e0 = kpart(t4(pa, pb, pc, pd, 0u), t4(qa, qb, qc, qd, 0u), xb);
  let e1 = kpart(t4(pa, pb, pc, pd, 1u), t4(qa, qb, qc, qd, 1u), xb + 1u);
  let e2 = kpart(t4(pa, pb, pc, pd, 2u), t4(qa, qb, qc, qd, 2u), xb + 2u);
  let e3 = kpart(t4(pa, pb, pc, pd, 3u), t4(qa, qb, qc, qd, 3u), xb + 3u);
  let ql = e0.ql + e1.ql + e2.ql + e3.ql;
  let qh = e0.qh + e1.qh + e2.qh + e3.qh;
  let xl = e0.xl + e1.xl + e2.xl + e3.xl;
  let xh = e0.xh + e1.xh + e2.xh + e3.xh;
  let d = f16lo(dm) * (k_scale(s0, s2, 2u * j) * ql + k_scale(s0, s2, 2u * j + 1u) * qh);
  return d - f16hi(dm) * (k_min(s1, s2, 2u * j) * xl + k_min(s1, s2, 2u * j + 1u) * xh);
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
  var acc = vec4<f32>(0.0);
  for (var s = 0u; s < P.steps; s++) {
    let o = 9u * s;
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
    acc += pair(
      t4(a0, b0, c0, d0, 0u), t4(a0, b0, c0, d0, 1u), t4(a0, b0, c0, d0, 2u),
      t4(a0, b0, c0, d0, 3u), t4(a1, b1, c1, d1, 0u), t4(a1, b1, c1, d1, 1u),
      t4(a1, b1, c1, d1, 2u), t4(a1, b1, c1, d1, 3u), t4(a2, b2, c2, d2, 0u), xb,
    );
    acc += pair(
      t4(a2, b2, c2, d2, 1u), t4(a2, b2, c2, d2, 2u), t4(a2, b2, c2, d2, 3u),
      t4(a3, b3, c3, d3, 0u), t4(a3, b3, c3, d3, 1u), t4(a3, b3, c3, d3, 2u),
      t4(a3, b3, c3, d3, 3u), t4(a4, b4, c4, d4, 0u), t4(a4, b4, c4, d4, 1u), xb + 16u,
    );
    acc += pair(
      t4(a4, b4, c4, d4, 2u), t4(a4, b4, c4, d4, 3u), t4(a5, b5, c5, d5, 0u),
      t4(a5, b5, c5, d5, 1u), t4(a5, b5, c5, d5, 2u), t4(a5, b5, c5, d5, 3u),
      t4(a6, b6, c6, d6, 0u), t4(a6, b6, c6, d6, 1u), t4(a6, b6, c6, d6, 2u), xb + 32u,
    );
    acc += pair(
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
    acc += kgroup(a1, a2, b1, b2, c1, c2, d1, d2, dm, s0, s1, s2, 0u, xb);
    acc += kgroup(a3, a4, b3, b4, c3, c4, d3, d4, dm, s0, s1, s2, 1u, xb + 16u);
    acc += kgroup(a5, a6, b5, b6, c5, c6, d5, d6, dm, s0, s1, s2, 2u, xb + 32u);
    acc += kgroup(a7, a8, b7, b8, c7, c8, d7, d8, dm, s0, s1, s2, 3u, xb + 48u);
#endif
  }
  finish(r0, acc.x);
  if (r0 + 1u <= last) {
    finish(r0 + 1u, acc.y);
  }
  if (r0 + 2u <= last) {
    finish(r0 + 2u, acc.z);
  }
  if (r0 + 3u <= last) {
    finish(r0 + 3u, acc.w);
  }
}
#endif
