// Reading ggml blocks out of W: array<u32> (matvec.wgsl, matmul.wgsl): blocks
// of 18/22/34/110/210 bytes start on 2-byte boundaries and MXFP4's 17-byte
// blocks on any byte, so words spanning them are shifted together, and the
// small fields are pulled out of whole words.

// The u32 starting at byte b, for b a multiple of 2.
fn w2(b: u32) -> u32 {
  let i = b >> 2u;
  let lo = W[i];
  let hi = W[i + 1u];
  return select((lo >> 16u) | (hi << 16u), lo, (b & 2u) == 0u);
}

// The u32 starting at any byte b (MXFP4). The high word's shift is split in
// two so that b on a word boundary shifts it out instead of by 32.
fn w1(b: u32) -> u32 {
  let i = b >> 2u;
  let s = (b & 3u) * 8u;
  return (W[i] >> s) | ((W[i + 1u] << (31u - s)) << 1u);
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

// Bit i (i < 4) of h moved to bit 0 of byte i: the four copies of h the
// multiply makes (shifted by 0, 7, 14, 21) never overlap, so nothing carries.
fn bits4(h: u32) -> u32 {
  return ((h & 0xfu) * 0x00204081u) & 0x01010101u;
}

#include "ggml_tables.wgsl"

// The four byte lanes of w (each a 4-bit index) looked up in KVALUES_IQ4NL.
fn iq4nl4(w: u32) -> vec4<f32> {
  return vec4<f32>(
    KVALUES_IQ4NL[w & 0xfu],
    KVALUES_IQ4NL[(w >> 8u) & 0xfu],
    KVALUES_IQ4NL[(w >> 16u) & 0xfu],
    KVALUES_IQ4NL[(w >> 24u) & 0xfu],
  );
}

// As iq4nl4, in KVALUES_MXFP4.
fn fp4x4(w: u32) -> vec4<f32> {
  return vec4<f32>(
    KVALUES_MXFP4[w & 0xfu],
    KVALUES_MXFP4[(w >> 8u) & 0xfu],
    KVALUES_MXFP4[(w >> 16u) & 0xfu],
    KVALUES_MXFP4[(w >> 24u) & 0xfu],
  );
}

// Q3_K: the 6-bit scale `is` (0..15) of the 12 scale bytes at byte s
// (low 4 bits from byte is % 8, nibble is / 8; high 2 bits from byte
// 8 + is % 4, bits 2 (is / 4)), as llama.cpp's dequantize_row_q3_K unpacks them.
fn q3k_scale(s: u32, is: u32) -> f32 {
  let lo = (b8(s + (is & 7u)) >> (4u * (is >> 3u))) & 0xfu;
  let hi = (b8(s + 8u + (is & 3u)) >> (2u * (is >> 2u))) & 3u;
  return f32(lo | (hi << 4u)) - 32.0;
}
