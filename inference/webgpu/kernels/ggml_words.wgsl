// Reading ggml blocks out of W: array<u32> (matvec.wgsl, matmul.wgsl): blocks
// of 18/34/210 bytes start on 2-byte boundaries, so words spanning them are
// shifted together, and the small fields are pulled out of whole words.

// The u32 starting at byte b, for b a multiple of 2.
fn w2(b: u32) -> u32 {
  let i = b >> 2u;
  let lo = W[i];
  let hi = W[i + 1u];
  return select((lo >> 16u) | (hi << 16u), lo, (b & 2u) == 0u);
}

// The f16 at byte b (b even), as f32.
fn h16(b: u32) -> f32 {
  return unpack2x16float(W[b >> 2u] >> ((b & 2u) * 8u)).x;
}

// The byte at b, zero-extended.
fn b8(b: u32) -> u32 {
  return (W[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// The low byte of v as a signed value.
fn i8f(v: u32) -> f32 {
  return f32(bitcast<i32>(v << 24u) >> 24u);
}

// The two bf16 halves of w.
fn bf16x2(w: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}

// Q4_K / Q5_K: 6-bit (scale, min) of sub-block `sub` (0..7) from the three
// scale words s0, s1, s2 (llama.cpp's get_scale_min_k4).
fn k_scale_min(s0: u32, s1: u32, s2: u32, sub: u32) -> vec2<f32> {
  if (sub < 4u) {
    let sh = 8u * sub;
    return vec2<f32>(f32((s0 >> sh) & 63u), f32((s1 >> sh) & 63u));
  }
  let sh = 8u * (sub - 4u);
  let sc = ((s2 >> sh) & 0xfu) | (((s0 >> (sh + 6u)) & 3u) << 4u);
  let m = ((s2 >> (sh + 4u)) & 0xfu) | (((s1 >> (sh + 6u)) & 3u) << 4u);
  return vec2<f32>(f32(sc), f32(m));
}
