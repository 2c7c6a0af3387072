// row_q6_k for the native build on x86 with AVX2 (included by ../wasm/kernels.c in place of
// the portable one): Q6_K holds the output matrix and half the down projections of a Q4_K_M
// file, read once per decoded token. Each half super-block's 128 six-bit levels are built 32
// at a time in 256-bit registers, dotted with maddubs and scaled with one madd whose 16 lanes
// carry the two group scales; the -32 offset comes off through the activation sums as in the
// portable kernel, in one multiply-add of vectors. The integer sums are the same exact ones
// (a pair of products is at most 2 * 63 * 128, far from i16's limit) and the f64 expression
// is the portable one's, so every output equals the WASM kernel's bit for bit.

static double row_q6_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  const __m256i low4 = _mm256_set1_epi8(15), bits45 = _mm256_set1_epi8(0x30);
  // After packs, the sums of 16 levels sit in the order [0-3, 8-11 | 4-7, 12-15].
  const __m128i packed_order = _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15);
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 210, y += 256, ys += 16) {
    __m128i scales8 = _mm_loadu_si128((const __m128i*)(w + 192));
    __m256i sums = _mm256_packs_epi32(_mm256_loadu_si256((const __m256i*)ys),
                                      _mm256_loadu_si256((const __m256i*)(ys + 8)));
    __m256i ordered = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales8, packed_order));
    int32_t offset = hsum_i32x8(_mm256_madd_epi16(sums, ordered));
    __m256i sum = _mm256_setzero_si256();
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = w + 64 * half;
      const int8_t* yh = y + 128 * half;
      // This half's eight scales as i16 in both 128-bit lanes.
      __m128i mine = half ? _mm_unpackhi_epi64(scales8, scales8) : scales8;
      __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(mine));
      __m256i p = _mm256_loadu_si256((const __m256i*)ql);
      __m256i e = _mm256_loadu_si256((const __m256i*)(ql + 32));
      __m256i h = _mm256_loadu_si256((const __m256i*)(w + 128 + 32 * half));
      // Levels of values 32k..32k+31 of the half: low or high nibbles, two bits of qh as 4-5.
      __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(p, low4), _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(e, low4), _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p, 4), low4), _mm256_and_si256(h, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(e, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45)),
      };
      for (int k = 0; k < 4; k++) {
        // Values 32k..32k+15 take scale 2k, 32k+16..32k+31 scale 2k + 1: the low lane's i16
        // lanes get the first, the high lane's the second.
        __m256i pick = _mm256_setr_epi8(4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k,
                                        4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,
                                        4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
                                        4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
                                        4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3);
        __m256i pairs =
            _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i*)(yh + 32 * k)));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, _mm256_shuffle_epi8(sc, pick)));
      }
    }
    uint16_t d;
    memcpy(&d, w + 208, 2);
    acc += (double)_cvtsh_ss(d) * yd[b] * (double)(hsum_i32x8(sum) - 32 * offset);
  }
  return acc;
}
