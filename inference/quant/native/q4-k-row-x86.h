// row_q4_k for the native build on x86 with AVX2 (included by ../wasm/kernels.c in place of
// the portable one). Decode reads every Q4_K weight once per token, so this kernel sets the
// speed there; the portable one spent more time unpacking scales and mins than dotting levels.
// Here 32 weight bytes (64 levels) go per step in 256-bit registers, the twelve bytes of
// six-bit scales and mins unpack four at a time, and the mins term is one multiply-add of
// vectors. The integer sums are the same exact ones (no step can overflow: levels are at most
// 15, activations 127 in magnitude) and the f64 expression is the portable one's, so every
// output equals the WASM kernel's bit for bit (matvec-native.test.ts).

// Sum of the eight i32 lanes.
static inline int32_t hsum_i32x8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// The eight six-bit scales (bytes 0-7) and mins (bytes 8-15) of get_scale_min_k4, from the
// super-block's twelve packed bytes, four at a time.
static inline __m128i q4_k_scales_mins(const uint8_t* s) {
  uint32_t u[4];
  memcpy(u, s, 12);
  uint32_t high_mins = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  uint32_t low_mins = u[1] & 0x3f3f3f3f;
  uint32_t high_scales = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  uint32_t low_scales = u[0] & 0x3f3f3f3f;
  return _mm_set_epi32((int)high_mins, (int)low_mins, (int)high_scales, (int)low_scales);
}

// Byte shuffles that broadcast scale k (an i16 in both 128-bit halves) to every i16 lane.
static inline __m256i q4_k_scale_shuffle(int k) {
  return _mm256_set1_epi16((short)((2 * k) | ((2 * k + 1) << 8)));
}

static double row_q4_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  const __m256i nibble = _mm256_set1_epi8(15);
  // Pair j of the sums of 16 activation levels sits at i16 lanes (2j', 2j'+1) after the
  // packing below, j' in this order; the mins are spread to match (see mins_dot).
  const __m128i mins_order = _mm_setr_epi8(8, 8, 9, 9, 12, 12, 13, 13, 10, 10, 11, 11, 14, 14,
                                           15, 15);
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 144, y += 256, ys += 16) {
    __m128i sm = q4_k_scales_mins(w + 4);
    __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm, mins_order));
    // packs: [ys 0-3, ys 8-11 | ys 4-7, ys 12-15] as i16 (each sum of 16 levels fits).
    __m256i sums = _mm256_packs_epi32(_mm256_loadu_si256((const __m256i*)ys),
                                      _mm256_loadu_si256((const __m256i*)(ys + 8)));
    int32_t summ = hsum_i32x8(_mm256_madd_epi16(sums, mins));
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i q = _mm256_loadu_si256((const __m256i*)(w + 16 + 32 * c));
      __m256i lo = _mm256_and_si256(q, nibble);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble);
      __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(y + 64 * c)));
      __m256i phi =
          _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(y + 64 * c + 32)));
      sum0 = _mm256_add_epi32(
          sum0, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(scales, q4_k_scale_shuffle(2 * c))));
      sum1 = _mm256_add_epi32(
          sum1,
          _mm256_madd_epi16(phi, _mm256_shuffle_epi8(scales, q4_k_scale_shuffle(2 * c + 1))));
    }
    int32_t isum = hsum_i32x8(_mm256_add_epi32(sum0, sum1));
    uint16_t h[2];
    memcpy(h, w, 4);
    double dy = yd[b];
    acc += (double)_cvtsh_ss(h[0]) * dy * (double)isum -
           (double)_cvtsh_ss(h[1]) * dy * (double)summ;
  }
  return acc;
}
