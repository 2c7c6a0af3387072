// Helpers shared by the rows4 kernels (matvec_rows4.wgsl, matmul_rows4.wgsl),
// which read W: texture_2d<u32> in the rows4 layout (rows4-layout.ts): texel
// component c of texture row g is a 32-bit word of matrix row 4g + c.

// Texel t of texture row g: one word of each of the 4 rows.
fn ld(g: u32, t: u32) -> vec4<u32> {
  return textureLoad(W, vec2<u32>(t, g), 0);
}

// The nibble(s) under mask m of each row's word, as f32: q * 2^b for the
// nibble at bit b, used where it lies instead of shifted down (masks never
// keep bit 31, so f32() sees a positive value).
fn mk(q: vec4<u32>, m: u32) -> vec4<f32> {
  return vec4<f32>(q & vec4<u32>(m));
}

// The low / high f16 of each row's word.
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

// Q4_K: 6-bit scale and min of sub-block `sub` (0..7) of 4 rows, from the
// super-block's scale words s0, s1, s2 (llama.cpp's get_scale_min_k4).
fn k_scale(s0: vec4<u32>, s2: vec4<u32>, sub: u32) -> vec4<f32> {
  if (sub < 4u) {
    return vec4<f32>((s0 >> vec4<u32>(8u * sub)) & vec4<u32>(63u));
  }
  let sh = 8u * (sub - 4u);
  return vec4<f32>(((s2 >> vec4<u32>(sh)) & vec4<u32>(15u)) |
    (((s0 >> vec4<u32>(sh + 6u)) & vec4<u32>(3u)) << vec4<u32>(4u)));
}

fn k_min(s1: vec4<u32>, s2: vec4<u32>, sub: u32) -> vec4<f32> {
  if (sub < 4u) {
    return vec4<f32>((s1 >> vec4<u32>(8u * sub)) & vec4<u32>(63u));
  }
  let sh = 8u * (sub - 4u);
  return vec4<f32>(((s2 >> vec4<u32>(sh + 4u)) & vec4<u32>(15u)) |
    (((s1 >> vec4<u32>(sh + 6u)) & vec4<u32>(3u)) << vec4<u32>(4u)));
}
