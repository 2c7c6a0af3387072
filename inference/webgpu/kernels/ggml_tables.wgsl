// Constant tables and scale decodings of ggml's weight types that need no
// access to W (included by ggml_words.wgsl and embed.wgsl).

// IQ4_NL / IQ4_XS levels (ggml-common.h kvalues_iq4nl).
const KVALUES_IQ4NL = array<f32, 16>(
  -127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0,
);

// MXFP4 levels: e2m1 values doubled (ggml-common.h kvalues_mxfp4); the block
// scale is halved to match (e8m0_half).
const KVALUES_MXFP4 = array<f32, 16>(
  0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0,
  0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0,
);

// An e8m0 exponent byte as 2^(e - 128), i.e. half its value (ggml's
// GGML_E8M0_TO_FP32_HALF), subnormal for e < 2.
fn e8m0_half(e: u32) -> f32 {
  return bitcast<f32>(select((e - 1u) << 23u, 0x00200000u << (e & 1u), e < 2u));
}
