// The one-vector K-quant rows (row_q4_k, row_q5_k, row_q6_k) for the native build on x86 with
// AVX2, included by ../wasm/kernels.c in place of the portable ones. Decode reads every weight
// once per token, so these kernels set its speed; the portable ones spent more time unpacking
// scales and mins than dotting levels. Here 32 weight bytes go per step in 256-bit registers,
// the twelve bytes of six-bit scales and mins unpack four at a time, and the mins term (Q6_K:
// the -32 offset) is one multiply-add of vectors. The integer sums are the same exact ones (no
// step can overflow: a pair of products is at most 2 * 63 * 128) and each f64 expression is
// the portable kernel's, so every output equals the WASM kernels' bit for bit
// (matvec-native.test.ts).

// Sum of the eight i32 lanes.
static inline int32_t hsum_i32x8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// The eight six-bit scales (bytes 0-7) and mins (bytes 8-15) of get_scale_min_k4, from the
// super-block's twelve packed bytes at s (16 bytes are read: the levels follow them), four at
// a time in the lanes of one register: [u0 & 0x3f.., (u2 & 0x0f..) | (u0 >> 6 & 3) << 4,
// u1 & 0x3f.., (u2 >> 4 & 0x0f..) | (u1 >> 6 & 3) << 4] for the packed words u0, u1, u2.
static inline __m128i q4_k_scales_mins(const uint8_t* s) {
  __m128i u = _mm_loadu_si128((const __m128i*)s);
  __m128i low = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0));   // u0, u2, u1, u2
  __m128i high = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));  // u0, u0, u1, u1
  low = _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // (x >> 6 & 3) << 4 in each byte is (x >> 2) & 0x30: the bits that cross bytes fall outside.
  high = _mm_and_si128(_mm_srli_epi32(high, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, high);
}

// Byte shuffles that broadcast scale k (an i16 in both 128-bit halves) to every i16 lane.
static inline __m256i q4_k_scale_shuffle(int k) {
  return _mm256_set1_epi16((short)((2 * k) | ((2 * k + 1) << 8)));
}

// One Q4_K (fifth = 0: 144 bytes, levels at +16) or Q5_K (fifth = 1: 176 bytes, 32 bytes of
// fifth bits at +16, levels at +48; bit 2c of qh byte i is the fifth bit of value 64c + i, bit
// 2c + 1 that of value 64c + 32 + i) super-block's integer sums, still in lanes: the levels'
// scaled dot in *isum and the mins term in *summ.
static inline __attribute__((always_inline)) void k45_sums(const uint8_t* w, const int8_t* y,
                                                           const int32_t* ys, int fifth,
                                                           __m256i* isum, __m256i* summ) {
  const __m256i nibble = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(16);
  // Pair j of the sums of 16 activation levels sits at i16 lanes (2j', 2j'+1) after the
  // packing below, j' in this order; the mins are spread to match.
  const __m128i mins_order = _mm_setr_epi8(8, 8, 9, 9, 12, 12, 13, 13, 10, 10, 11, 11, 14, 14,
                                           15, 15);
  __m128i sm = q4_k_scales_mins(w + 4);
  __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
  __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm, mins_order));
  // packs: [ys 0-3, ys 8-11 | ys 4-7, ys 12-15] as i16 (each sum of 16 levels fits).
  __m256i sums = _mm256_packs_epi32(_mm256_loadu_si256((const __m256i*)ys),
                                    _mm256_loadu_si256((const __m256i*)(ys + 8)));
  *summ = _mm256_madd_epi16(sums, mins);
  __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
  // Q5_K's fifth bits: bits 0 and 1 of each byte of h are those of the step's values, h
  // shifting two bits per step (what crosses from the next byte lands in bits 6-7, unread).
  __m256i h = fifth ? _mm256_loadu_si256((const __m256i*)(w + 16)) : _mm256_setzero_si256();
  const uint8_t* qs = w + (fifth ? 48 : 16);
  for (int c = 0; c < 4; c++) {
    __m256i q = _mm256_loadu_si256((const __m256i*)(qs + 32 * c));
    __m256i lo = _mm256_and_si256(q, nibble);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble);
    if (fifth) {
      lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4));
      hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4));
      h = _mm256_srli_epi16(h, 2);
    }
    __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(y + 64 * c)));
    __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(y + 64 * c + 32)));
    sum0 = _mm256_add_epi32(
        sum0, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(scales, q4_k_scale_shuffle(2 * c))));
    sum1 = _mm256_add_epi32(
        sum1, _mm256_madd_epi16(phi, _mm256_shuffle_epi8(scales, q4_k_scale_shuffle(2 * c + 1))));
  }
  *isum = _mm256_add_epi32(sum0, sum1);
}

// The row's super-blocks two at a time: their four lane sums reduce together, their four f16
// scales convert together and their terms come out of one f64 vector, each term rounded as
// the portable kernel rounds it: (d * dy) * isum - (dmin * dy) * summ, added in block order.
static inline __attribute__((always_inline)) double row_k45(const uint8_t* w, int nb,
                                                            const int8_t* y, const double* yd,
                                                            const int32_t* ys, int fifth) {
  const int bytes = fifth ? 176 : 144;
  double acc = 0;
  int b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * bytes, y += 512, ys += 32) {
    __m256i i0, m0, i1, m1;
    k45_sums(w, y, ys, fifth, &i0, &m0);
    k45_sums(w + bytes, y + 256, ys + 16, fifth, &i1, &m1);
    // [isum0, summ0, isum1, summ1]: pairwise adds within each 128-bit half, then the halves.
    __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(i0, m0), _mm256_hadd_epi32(i1, m1));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    // [d0, dmin0, d1, dmin1] and [dy0, dy0, dy1, dy1].
    int32_t h0, h1;
    memcpy(&h0, w, 4);
    memcpy(&h1, w + bytes, 4);
    __m128i halves = _mm_insert_epi32(_mm_cvtsi32_si128(h0), h1, 1);
    __m256d dm = _mm256_cvtps_pd(_mm_cvtph_ps(halves));
    __m256d dy = _mm256_setr_pd(yd[b], yd[b], yd[b + 1], yd[b + 1]);
    __m256d p = _mm256_mul_pd(_mm256_mul_pd(dm, dy), _mm256_cvtepi32_pd(s4));
    __m256d terms = _mm256_hsub_pd(p, p);  // [p0 - p1, p0 - p1, p2 - p3, p2 - p3]
    acc += terms[0];
    acc += terms[2];
  }
  for (; b < nb; b++, w += bytes, y += 256, ys += 16) {
    __m256i isum, summ;
    k45_sums(w, y, ys, fifth, &isum, &summ);
    uint16_t dm[2];
    memcpy(dm, w, 4);
    double dy = yd[b];
    acc += (double)_cvtsh_ss(dm[0]) * dy * (double)hsum_i32x8(isum) -
           (double)_cvtsh_ss(dm[1]) * dy * (double)hsum_i32x8(summ);
  }
  return acc;
}

static double row_q4_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  return row_k45(w, nb, y, yd, ys, 0);
}

static double row_q5_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  return row_k45(w, nb, y, yd, ys, 1);
}

// Q6_K: each half super-block's 128 six-bit levels built 32 at a time, scaled with one madd whose
// 16 lanes carry the two group scales.
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
      __m256i p4 = _mm256_srli_epi16(p, 4), e4 = _mm256_srli_epi16(e, 4);
      __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(p, low4),
                          _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(e, low4),
                          _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(p4, low4), _mm256_and_si256(h, bits45)),
          _mm256_or_si256(_mm256_and_si256(e4, low4),
                          _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45)),
      };
      for (int k = 0; k < 4; k++) {
        // Values 32k..32k+15 take scale 2k, 32k+16..32k+31 scale 2k + 1: the low lane's i16
        // lanes get the first, the high lane's the second.
        __m256i pick = _mm256_setr_m128i(_mm_set1_epi16((short)(4 * k | (4 * k + 1) << 8)),
                                         _mm_set1_epi16((short)((4 * k + 2) | (4 * k + 3) << 8)));
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
