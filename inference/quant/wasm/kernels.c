// Quantized matrix-vector kernels for Grove's CPU path, compiled to wasm32
// with 128-bit SIMD (build.ts). Each block's dot is the exact integer sum
// llama.cpp's generic C computes (ggml_vec_dot_*_q8_*); the scale products
// and the running sum are in f64 in block order, the same expression as
// dot-q-0.ts / dot-k.ts, so the outputs equal those references bit for bit.
//
// Activations come pre-rounded by activations.ts: `yq` int8 levels (n * cols),
// `yd` each block's scale widened to f64, `ys` sums of each 16 levels (the
// K-quant mins and Q6_K's offset need them; for Q4_0 and Q5_0, 8 or 16 *
// each block's sum; for Q5_1, each block's Q8_1 `s` as f64).
// out[v * rows + r] = dot(row r, vector v).

#include <stdint.h>
#include <wasm_simd128.h>

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(name)))
#else
// The native build of this file (../native/build.ts, its own wasm_simd128.h).
#define EXPORT(name) __attribute__((visibility("default")))
#endif

// f16 bits to their exact value. Normal halves only need their exponent
// rebiased; subnormals are m * 2^-24. (Scaling the shifted bits by 2^112
// would be shorter, but multiplies f32 subnormals, which x86 does ~100x
// slower, and small scales such as K-quant mins are often subnormal.)
static inline double fp16_value(uint32_t h) {
  uint32_t bits = (h & 0x7fff) << 13, e = h & 0x7c00;
  float f;
  if (e == 0x7c00) {
    f = __builtin_bit_cast(float, bits | 0x7f800000);
  } else if (e == 0) {
    f = (float)(h & 0x3ff) * 0x1p-24f;
  } else {
    f = __builtin_bit_cast(float, bits + (112u << 23));
  }
  return (h & 0x8000) ? -(double)f : (double)f;
}

static inline double fp16(const uint8_t* p) { return fp16_value((uint32_t)p[0] | ((uint32_t)p[1] << 8)); }

static inline v128_t load(const void* p) { return wasm_v128_load(p); }

// Sum of w[i] * y[i] over 16 int8 lanes, as four i32 partial sums. Adjacent
// products are added in i16 first: every pair here stays below 2^15.
static inline v128_t dot16(v128_t w, v128_t y) {
  v128_t p = wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(w, y), wasm_i16x8_extmul_high_i8x16(w, y));
  return wasm_i32x4_extadd_pairwise_i16x8(p);
}

// acc + the same sums for weight levels in [0, 127]. With relaxed SIMD this
// is one instruction (pmaddubsw + pmaddwd on x86), deterministic because
// the second operand's top bit is clear, which is the case it defines.
static inline v128_t dot16u(v128_t acc, v128_t wu, v128_t y) {
#ifdef RELAXED
  return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(y, wu, acc);
#else
  return wasm_i32x4_add(acc, dot16(wu, y));
#endif
}

// Pairwise sums (i16) of wu[i] * y[i] for weight levels in [0, 127]; which
// products pair up does not matter where all 16 share one scale. Every
// caller's pair, or two pairs added, stays below 2^15.
static inline v128_t pairs16u(v128_t wu, v128_t y) {
#ifdef RELAXED
  return wasm_i16x8_relaxed_dot_i8x16_i7x16(y, wu);
#else
  return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(wu, y), wasm_i16x8_extmul_high_i8x16(wu, y));
#endif
}

// acc + scale * (i16 pair sums), widened to i32 (one pmaddwd on x86).
static inline v128_t scaled(v128_t acc, v128_t pairs, int32_t scale) {
  return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(pairs, wasm_i16x8_splat((int16_t)scale)));
}

// Nibbles by 16-bit shifts (native on x86, unlike 8-bit ones) and a byte mask.
static inline v128_t low4(v128_t q) { return wasm_v128_and(q, wasm_i8x16_splat(15)); }
static inline v128_t high4(v128_t q) {
  return wasm_v128_and(wasm_u16x8_shr(q, 4), wasm_i8x16_splat(15));
}

static inline int32_t hsum(v128_t v) {
  v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_i32x4_extract_lane(v, 0);
}

// ---------------------------------------------------------------------------
// Q8_0 and Q4_0: 32 values per block, one f16 scale; activations Q8_0.
// Blocks go four at a time: their integer sums are reduced together and
// their scales converted together; the f64 sum still adds them in order.

// [sum(s0), sum(s1), sum(s2), sum(s3)].
static inline v128_t hsum4(v128_t s0, v128_t s1, v128_t s2, v128_t s3) {
  v128_t a = wasm_i32x4_add(wasm_i32x4_shuffle(s0, s1, 0, 4, 1, 5),
                            wasm_i32x4_shuffle(s0, s1, 2, 6, 3, 7));
  v128_t b = wasm_i32x4_add(wasm_i32x4_shuffle(s2, s3, 0, 4, 1, 5),
                            wasm_i32x4_shuffle(s2, s3, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 1, 4, 5), wasm_i32x4_shuffle(a, b, 2, 3, 6, 7));
}

// Asks for the two cache lines at `p` ahead of their use (native build; WASM has no
// prefetch). A grouped kernel spends ~3 ns a block on arithmetic for eight vectors, and there
// the CPU's own prefetcher fell behind its walk through a matrix streamed from memory: asked
// 2 KiB ahead, a 2048-column Q4_0 product of eight vectors took 25 % less time (measured on
// this project's 2-core Zen 4 host, weights cycling through 64 MB).
__attribute__((unused)) static inline void prefetch_lines(const uint8_t* p) {
#if !defined(__wasm__)
  __builtin_prefetch(p);
  __builtin_prefetch(p + 64);
#else
  (void)p;
#endif
}

// How far ahead of a row walk prefetch_lines asks: ~0.5 µs of arithmetic at the rate above,
// past the latency of a read from memory.
#define PREFETCH_AHEAD 2048

// The f16 scales of four blocks `stride` bytes apart, as f32 (fp16(), 4 lanes;
// subnormal and infinite scales take a slower branch).
static inline v128_t fp16x4(const uint8_t* w, int stride) {
#if defined(__F16C__) && !defined(__wasm__)
  // The native build's F16C conversion: the same values (a NaN may come back quieted).
  uint16_t a[4];
  for (int k = 0; k < 4; k++) memcpy(&a[k], w + k * stride, 2);
  // Lanes set from registers: a load of the four stored halves would wait on store forwarding.
  return (v128_t)_mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, (short)a[3], (short)a[2], (short)a[1], (short)a[0]));
#endif
  v128_t h = wasm_i32x4_splat(0);
  h = wasm_v128_load16_lane(w, h, 0);
  h = wasm_v128_load16_lane(w + stride, h, 2);
  h = wasm_v128_load16_lane(w + 2 * stride, h, 4);
  h = wasm_v128_load16_lane(w + 3 * stride, h, 6);
  v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
  v128_t bits = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
  v128_t f = wasm_i32x4_add(bits, wasm_i32x4_splat(112 << 23));
  // Exponent field 0 or 31: (e + 0x400) & 0x7c00 is then below 0x800.
  v128_t e = wasm_v128_and(wasm_i32x4_add(h, wasm_i32x4_splat(0x400)), wasm_i32x4_splat(0x7c00));
  if (__builtin_expect(wasm_v128_any_true(wasm_u32x4_lt(e, wasm_i32x4_splat(0x800))), 0)) {
    v128_t e0 = wasm_v128_and(h, wasm_i32x4_splat(0x7c00));
    v128_t sub = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_and(h, wasm_i32x4_splat(0x3ff))),
                                wasm_f32x4_splat(0x1p-24f));
    v128_t special = wasm_v128_or(bits, wasm_i32x4_splat(0x7f800000));
    f = wasm_v128_bitselect(sub, f, wasm_i32x4_eq(e0, wasm_i32x4_splat(0)));
    f = wasm_v128_bitselect(special, f, wasm_i32x4_eq(e0, wasm_i32x4_splat(0x7c00)));
  }
  return wasm_v128_or(f, sign);
}

// acc + sum_k sumi[k] * (dw[k] * dy[k]), added in block order.
static inline double scale_add4(double acc, v128_t sumi, v128_t dw, const double* dy) {
#if defined(__AVX__) && !defined(__wasm__)
  // Four lanes per instruction in the native build; each product rounds as below.
  __m256d p = _mm256_mul_pd(_mm256_cvtepi32_pd((__m128i)sumi),
                            _mm256_mul_pd(_mm256_cvtps_pd((__m128)dw), _mm256_loadu_pd(dy)));
  acc += p[0];
  acc += p[1];
  acc += p[2];
  acc += p[3];
  return acc;
#endif
  v128_t p01 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(sumi),
                              wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(dw), wasm_v128_load(dy)));
  v128_t hi = wasm_i32x4_shuffle(sumi, sumi, 2, 3, 2, 3);
  v128_t dhi = wasm_i32x4_shuffle(dw, dw, 2, 3, 2, 3);
  v128_t p23 = wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(hi),
                              wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(dhi), wasm_v128_load(dy + 2)));
  acc += wasm_f64x2_extract_lane(p01, 0);
  acc += wasm_f64x2_extract_lane(p01, 1);
  acc += wasm_f64x2_extract_lane(p23, 0);
  acc += wasm_f64x2_extract_lane(p23, 1);
  return acc;
}

static inline v128_t q8_0_block(const uint8_t* w, const int8_t* y) {
  return wasm_i32x4_add(dot16(load(w + 2), load(y)), dot16(load(w + 18), load(y + 16)));
}

static double row_q8_0(const uint8_t* w, int nb, const int8_t* y, const double* yd) {
  double acc = 0;
  int b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * 34, y += 128) {
    v128_t s = hsum4(q8_0_block(w, y), q8_0_block(w + 34, y + 32), q8_0_block(w + 68, y + 64),
                     q8_0_block(w + 102, y + 96));
    acc = scale_add4(acc, s, fp16x4(w, 34), yd + b);
  }
  for (; b < nb; b++, w += 34, y += 32) acc += (double)hsum(q8_0_block(w, y)) * (fp16(w) * yd[b]);
  return acc;
}

// Unsigned nibbles dotted; their -8 offset comes off through the activation sums.
static inline v128_t q4_0_block(const uint8_t* w, const int8_t* y) {
  v128_t q = load(w + 2);
  v128_t lo = dot16u(wasm_i32x4_splat(0), wasm_v128_and(q, wasm_i8x16_splat(15)), load(y));
  return dot16u(lo, wasm_u8x16_shr(q, 4), load(y + 16));
}

// `off` holds 8 * (sum of each block's 32 activation levels), one per block.
static double row_q4_0(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* off) {
  double acc = 0;
  int b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * 18, y += 128) {
    v128_t s = hsum4(q4_0_block(w, y), q4_0_block(w + 18, y + 32), q4_0_block(w + 36, y + 64),
                     q4_0_block(w + 54, y + 96));
    acc = scale_add4(acc, wasm_i32x4_sub(s, load(off + b)), fp16x4(w, 18), yd + b);
  }
  for (; b < nb; b++, w += 18, y += 32) {
    acc += (double)(hsum(q4_0_block(w, y)) - off[b]) * (fp16(w) * yd[b]);
  }
  return acc;
}

// ---------------------------------------------------------------------------
// K-quants: 256 values per super-block; activations Q8_K.

// get_scale_min_k4 for all eight sub-blocks: 6-bit scales and mins.
static inline void scales_mins(const uint8_t* s, int32_t* sc, int32_t* mn) {
  for (int j = 0; j < 4; j++) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
    sc[j + 4] = (s[j + 8] & 15) | ((s[j] >> 6) << 4);
    mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
  }
}

// The one-vector K-quant rows; the native build on x86 has its own (k-quants-row-x86.h).
#if defined(__AVX2__) && defined(__F16C__) && !defined(__wasm__)
#include "k-quants-row-x86.h"
#else
// The mins term: sum over sub-blocks of min * (sum of its 32 activation levels).
static inline int32_t mins_dot(const int32_t* mn, const int32_t* ys) {
  int32_t summ = 0;
  for (int j = 0; j < 8; j++) summ += mn[j] * (ys[2 * j] + ys[2 * j + 1]);
  return summ;
}

static double row_q4_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  double acc = 0;
  int32_t sc[8], mn[8];
  for (int b = 0; b < nb; b++, w += 144, y += 256, ys += 16) {
    scales_mins(w + 4, sc, mn);
    v128_t sum = wasm_i32x4_splat(0);
    for (int c = 0; c < 4; c++) {
      const uint8_t* q = w + 16 + 32 * c;
      const int8_t* yc = y + 64 * c;
      v128_t q0 = load(q), q1 = load(q + 16);
      v128_t lo = wasm_i16x8_add(pairs16u(low4(q0), load(yc)), pairs16u(low4(q1), load(yc + 16)));
      v128_t hi = wasm_i16x8_add(pairs16u(high4(q0), load(yc + 32)),
                                 pairs16u(high4(q1), load(yc + 48)));
      sum = scaled(scaled(sum, lo, sc[2 * c]), hi, sc[2 * c + 1]);
    }
    double dy = yd[b];
    acc += fp16(w) * dy * (double)hsum(sum) - fp16(w + 2) * dy * (double)mins_dot(mn, ys);
  }
  return acc;
}

// Bit k of each byte of h, moved to bit 4 (16-bit shifts: the mask drops
// what crosses from the neighbouring byte).
static inline v128_t bit_to_4(v128_t h, int k) {
  v128_t m = wasm_i8x16_splat(16);
  if (k < 4) return wasm_v128_and(wasm_i16x8_shl(h, 4 - k), m);
  if (k > 4) return wasm_v128_and(wasm_u16x8_shr(h, k - 4), m);
  return wasm_v128_and(h, m);
}

static double row_q5_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  double acc = 0;
  int32_t sc[8], mn[8];
  for (int b = 0; b < nb; b++, w += 176, y += 256, ys += 16) {
    scales_mins(w + 4, sc, mn);
    v128_t h0 = load(w + 16), h1 = load(w + 32);
    v128_t sum = wasm_i32x4_splat(0);
    for (int c = 0; c < 4; c++) {
      const uint8_t* q = w + 48 + 32 * c;
      const int8_t* yc = y + 64 * c;
      v128_t q0 = load(q), q1 = load(q + 16);
      // Fifth bit of the low nibbles is bit 2c of qh, of the high nibbles bit 2c + 1.
      v128_t l0 = wasm_v128_or(low4(q0), bit_to_4(h0, 2 * c));
      v128_t l1 = wasm_v128_or(low4(q1), bit_to_4(h1, 2 * c));
      v128_t u0 = wasm_v128_or(high4(q0), bit_to_4(h0, 2 * c + 1));
      v128_t u1 = wasm_v128_or(high4(q1), bit_to_4(h1, 2 * c + 1));
      v128_t lo = wasm_i16x8_add(pairs16u(l0, load(yc)), pairs16u(l1, load(yc + 16)));
      v128_t hi = wasm_i16x8_add(pairs16u(u0, load(yc + 32)), pairs16u(u1, load(yc + 48)));
      sum = scaled(scaled(sum, lo, sc[2 * c]), hi, sc[2 * c + 1]);
    }
    double dy = yd[b];
    acc += fp16(w) * dy * (double)hsum(sum) - fp16(w + 2) * dy * (double)mins_dot(mn, ys);
  }
  return acc;
}

// Unsigned six-bit levels; the -32 offset comes off through the activation
// sums, scaled like the group they belong to.
static double row_q6_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  const v128_t m30 = wasm_i8x16_splat(0x30);
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 210, y += 256, ys += 16) {
    const int8_t* scales = (const int8_t*)(w + 192);
    v128_t sum = wasm_i32x4_splat(0);
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      const int8_t* yg = y + 128 * half;
      for (int g = 0; g < 2; g++, yg += 16) {
        v128_t p = load(ql + 16 * g), e = load(ql + 32 + 16 * g), h = load(qh + 16 * g);
        // Low/high nibbles with two bits of qh each, as bits 4-5.
        v128_t q1 = wasm_v128_or(low4(p), wasm_v128_and(wasm_i16x8_shl(h, 4), m30));
        v128_t q2 = wasm_v128_or(low4(e), wasm_v128_and(wasm_i16x8_shl(h, 2), m30));
        v128_t q3 = wasm_v128_or(high4(p), wasm_v128_and(h, m30));
        v128_t q4 = wasm_v128_or(high4(e), wasm_v128_and(wasm_u16x8_shr(h, 2), m30));
        sum = scaled(sum, pairs16u(q1, load(yg)), sc[g]);
        sum = scaled(sum, pairs16u(q2, load(yg + 32)), sc[g + 2]);
        sum = scaled(sum, pairs16u(q3, load(yg + 64)), sc[g + 4]);
        sum = scaled(sum, pairs16u(q4, load(yg + 96)), sc[g + 6]);
      }
    }
    // Group j of 16 (in value order) has scale j: take 32 * scale * its level sum off.
    int32_t offset = 0;
    for (int j = 0; j < 16; j++) offset += scales[j] * ys[j];
    acc += fp16(w + 208) * yd[b] * (double)(hsum(sum) - 32 * offset);
  }
  return acc;
}
#endif

// ---------------------------------------------------------------------------
// The types of issue 15. Q5_0, IQ4_NL and MXFP4 take Q8_0 activations, Q5_1
// Q8_1 (Q8_0's levels plus each block's rounded sum `s`), Q2_K, Q3_K and
// IQ4_XS Q8_K. Each dots integer levels exactly and scales them as
// dot-q5.ts / dot-iq4.ts / dot-k-low.ts do.

// The fifth bits of 16 values, bits 0-15 of the u16 at `qh`, as 16 or 0 per lane.
static inline v128_t fifth_bits(const uint8_t* qh) {
  v128_t b = wasm_i16x8_splat((int16_t)(qh[0] | (qh[1] << 8)));
  v128_t spread = wasm_i8x16_swizzle(b, wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  v128_t bit = wasm_i8x16_make(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return wasm_v128_and(wasm_i8x16_eq(wasm_v128_and(spread, bit), bit), wasm_i8x16_splat(16));
}

// Unsigned 5-bit levels of one Q5 block (qh at `qh`, nibbles 4 bytes on) dotted with y.
static inline v128_t q5_block(const uint8_t* qh, const int8_t* y) {
  v128_t q = load(qh + 4);
  v128_t lo = wasm_v128_or(low4(q), fifth_bits(qh));
  v128_t hi = wasm_v128_or(high4(q), fifth_bits(qh + 2));
  return dot16u(dot16u(wasm_i32x4_splat(0), lo, load(y)), hi, load(y + 16));
}

// `off` holds 16 * (sum of each block's 32 activation levels): Q5_0's -16 offset.
static double row_q5_0(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* off) {
  double acc = 0;
  int b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * 22, y += 128) {
    v128_t s = hsum4(q5_block(w + 2, y), q5_block(w + 24, y + 32), q5_block(w + 46, y + 64),
                     q5_block(w + 68, y + 96));
    acc = scale_add4(acc, wasm_i32x4_sub(s, load(off + b)), fp16x4(w, 22), yd + b);
  }
  for (; b < nb; b++, w += 22, y += 32) {
    acc += (double)(hsum(q5_block(w + 2, y)) - off[b]) * (fp16(w) * yd[b]);
  }
  return acc;
}

// `ys` holds each block's `s` (as f64): the min's term is m * s.
static double row_q5_1(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const double* ys) {
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 24, y += 32) {
    acc += (double)hsum(q5_block(w + 4, y)) * (fp16(w) * yd[b]) + fp16(w + 2) * ys[b];
  }
  return acc;
}

// Table levels (signed int8) of 16 nibbles.
static inline v128_t lookup(v128_t table, v128_t nibbles) {
  return wasm_i8x16_swizzle(table, nibbles);
}

// Signed table levels of one 32-value block (16 nibble bytes at q) dotted with y.
static inline v128_t table_block(v128_t table, const uint8_t* q, const int8_t* y) {
  v128_t p = load(q);
  return wasm_i32x4_add(dot16(lookup(table, low4(p)), load(y)),
                        dot16(lookup(table, high4(p)), load(y + 16)));
}

static const int8_t KVALUES_IQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                         1,    13,   25,  38,  53,  69,  89,  113};
static const int8_t KVALUES_MXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static double row_iq4_nl(const uint8_t* w, int nb, const int8_t* y, const double* yd) {
  const v128_t table = load(KVALUES_IQ4NL);
  double acc = 0;
  int b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * 18, y += 128) {
    v128_t s = hsum4(table_block(table, w + 2, y), table_block(table, w + 20, y + 32),
                     table_block(table, w + 38, y + 64), table_block(table, w + 56, y + 96));
    acc = scale_add4(acc, s, fp16x4(w, 18), yd + b);
  }
  for (; b < nb; b++, w += 18, y += 32) {
    acc += (double)hsum(table_block(table, w + 2, y)) * (fp16(w) * yd[b]);
  }
  return acc;
}

// ggml_e8m0_to_fp32_half: 2^(e - 128), a normal f64 for every byte.
static inline double e8m0_half(uint8_t e) {
  return __builtin_bit_cast(double, (uint64_t)(e + 895) << 52);
}

static double row_mxfp4(const uint8_t* w, int nb, const int8_t* y, const double* yd) {
  const v128_t table = load(KVALUES_MXFP4);
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 17, y += 32) {
    acc += (double)hsum(table_block(table, w + 1, y)) * (e8m0_half(w[0]) * yd[b]);
  }
  return acc;
}

static double row_iq4_xs(const uint8_t* w, int nb, const int8_t* y, const double* yd) {
  const v128_t table = load(KVALUES_IQ4NL);
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 136, y += 256) {
    uint32_t h = (uint32_t)w[2] | ((uint32_t)w[3] << 8);
    v128_t sum = wasm_i32x4_splat(0);
    for (int ib = 0; ib < 8; ib++) {
      int32_t ls = (((w[4 + ib / 2] >> (4 * (ib & 1))) & 15) | (((h >> (2 * ib)) & 3) << 4)) - 32;
      v128_t p = load(w + 8 + 16 * ib);
      const int8_t* yb = y + 32 * ib;
      // Each pair of table levels times activations stays within i16 (2 * 127 * 127).
      v128_t lo = lookup(table, low4(p)), hi = lookup(table, high4(p));
      v128_t plo = wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(lo, load(yb)),
                                  wasm_i16x8_extmul_high_i8x16(lo, load(yb)));
      v128_t phi = wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(hi, load(yb + 16)),
                                  wasm_i16x8_extmul_high_i8x16(hi, load(yb + 16)));
      sum = scaled(scaled(sum, plo, ls), phi, ls);
    }
    acc += fp16(w) * yd[b] * (double)hsum(sum);
  }
  return acc;
}

// Two-bit levels at bit `shift` of 16 bytes (16-bit shifts, then the byte mask).
static inline v128_t bits2(v128_t q, int shift) {
  return wasm_v128_and(wasm_u16x8_shr(q, shift), wasm_i8x16_splat(3));
}

static double row_q2_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 84, y += 256, ys += 16) {
    v128_t sum = wasm_i32x4_splat(0);
    int32_t summ = 0;
    // Group g (16 values in value order) has scale byte g: low nibble scale, high min.
    for (int g = 0; g < 16; g++) {
      v128_t q = load(w + 16 + 32 * (g >> 3) + 16 * (g & 1));
      sum = scaled(sum, pairs16u(bits2(q, 2 * ((g >> 1) & 3)), load(y + 16 * g)), w[g] & 15);
      summ += (w[g] >> 4) * ys[g];
    }
    double dy = yd[b];
    acc += fp16(w + 80) * dy * (double)hsum(sum) - fp16(w + 82) * dy * (double)summ;
  }
  return acc;
}

// Bit k of each byte of h, moved to bit 2 (16-bit shifts: the mask drops
// what crosses from the neighbouring byte).
static inline v128_t bit_to_2(v128_t h, int k) {
  v128_t m = wasm_i8x16_splat(4);
  if (k < 2) return wasm_v128_and(wasm_i16x8_shl(h, 2 - k), m);
  if (k > 2) return wasm_v128_and(wasm_u16x8_shr(h, k - 2), m);
  return wasm_v128_and(h, m);
}

// Unsigned three-bit levels; the -4 offset comes off through the activation
// sums, scaled like the group they belong to.
static double row_q3_k(const uint8_t* w, int nb, const int8_t* y, const double* yd,
                       const int32_t* ys) {
  double acc = 0;
  for (int b = 0; b < nb; b++, w += 110, y += 256, ys += 16) {
    v128_t sum = wasm_i32x4_splat(0);
    int32_t offset = 0;
    for (int g = 0; g < 16; g++) {
      int part = 16 * (g & 1);
      v128_t q = load(w + 32 + 32 * (g >> 3) + part);
      v128_t level = wasm_v128_or(bits2(q, 2 * ((g >> 1) & 3)), bit_to_2(load(w + part), g >> 1));
      const uint8_t* sc = w + 96;
      int32_t low = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4;
      int32_t scale = (low | (((sc[8 + (g & 3)] >> (2 * (g >> 2))) & 3) << 4)) - 32;
      sum = scaled(sum, pairs16u(level, load(y + 16 * g)), scale);
      offset += scale * ys[g];
    }
    acc += fp16(w + 108) * yd[b] * (double)(hsum(sum) - 4 * offset);
  }
  return acc;
}

// ---------------------------------------------------------------------------
// Activation rounding, bit for bit as activations.ts does it (quantizeQ8_0,
// quantizeQ8_K and the sums of each 16 levels): every step is one f32
// operation there too (Math.fround of an exactly rounded f64 result), and
// NaN levels become 0 as an Int8Array store makes them.

// fp16.ts's f32ToFp16: round to nearest even, NaN to 0x7e00, >= 65520 to infinity.
static inline uint32_t f32_to_fp16(float f) {
  uint32_t x = __builtin_bit_cast(uint32_t, f);
  uint32_t sign = (x >> 16) & 0x8000, abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) return sign | ((abs + 0x0fff + ((abs >> 13) & 1) - 0x38000000) >> 13);
  return sign | (uint32_t)__builtin_rint((double)__builtin_fabsf(f) * 16777216.0);
}

// Math.round's halves away from zero (quantizeQ8_0) or to even (quantizeQ8_K).
static inline int8_t level(float v, int even) {
  if (v != v) return 0;
  float r = __builtin_rintf(v);
  if (!even) {
    float t = __builtin_truncf(v);
    r = __builtin_fabsf(v - t) >= 0.5f ? t + __builtin_copysignf(1.0f, v) : t;
  }
  if (even && r > 127) r = 127;
  return (int8_t)(int32_t)r;
}

static void sums_16(const int8_t* qs, int total, int32_t* sums16) {
  for (int g = 0; g < total / 16; g++) {
    int32_t s = 0;
    for (int j = 0; j < 16; j++) s += qs[16 * g + j];
    sums16[g] = s;
  }
}

#if !defined(__wasm__)
typedef float q8_f32x32 __attribute__((ext_vector_type(32)));
// A block without NaN or infinity in vector code (native build): the same amax (a maximum, in
// any order), scale and levels (rounding half away from zero, as level() does). False for a
// block holding either: the scalar loop then takes it (Math.max's NaN rule, level()'s NaN).
static inline int quantize_block_q8_0_vec(const float* x, int8_t* qs, float* d) {
  q8_f32x32 v;
  memcpy(&v, x, sizeof v);
  if (__builtin_reduce_or(v != v)) return 0;
  float amax = __builtin_reduce_max(__builtin_elementwise_abs(v));
  if (amax == __builtin_inff()) return 0; // levels of inf * 0: the scalar loop's NaN rule
  float db = amax / 127.0f;
  float id = db != 0 ? 1.0f / db : 0.0f;
  *d = (float)fp16_value(f32_to_fp16(db));
  q8_f32x32 r = __builtin_elementwise_round(v * id);
  for (int j = 0; j < 32; j++) qs[j] = (int8_t)(int32_t)r[j];
  return 1;
}
#endif

EXPORT("quantize_q8_0")
void quantize_q8_0(const float* x, int total, int8_t* qs, float* d, int32_t* sums16) {
  for (int b = 0, i0 = 0; i0 < total; b++, i0 += 32) {
#if !defined(__wasm__)
    if (quantize_block_q8_0_vec(x + i0, qs + i0, d + b)) continue;
#endif
    float amax = 0;
    for (int j = i0; j < i0 + 32; j++) {
      float a = __builtin_fabsf(x[j]);
      if (a > amax || a != a) amax = a; // Math.max: NaN wins
      if (amax != amax) break;
    }
    float db = amax / 127.0f;
    float id = db != 0 ? 1.0f / db : 0.0f;
    d[b] = (float)fp16_value(f32_to_fp16(db));
    for (int j = i0; j < i0 + 32; j++) qs[j] = level(x[j] * id, 0);
  }
  sums_16(qs, total, sums16);
}

EXPORT("quantize_q8_k")
void quantize_q8_k(const float* x, int total, int8_t* qs, float* d, int32_t* sums16) {
  for (int b = 0, i0 = 0; i0 < total; b++, i0 += 256) {
    float max = 0, amax = 0;
    for (int j = i0; j < i0 + 256; j++) {
      float a = __builtin_fabsf(x[j]);
      if (a > amax) {
        amax = a;
        max = x[j];
      }
    }
    // All-zero blocks (amax 0: every value is +-0) get levels 0 and scale 0.
    float iscale = amax == 0 ? 0.0f : -127.0f / max;
    for (int j = i0; j < i0 + 256; j++) qs[j] = level(iscale * x[j], 1);
    d[b] = amax == 0 ? 0.0f : 1.0f / iscale;
  }
  sums_16(qs, total, sums16);
}

// ---------------------------------------------------------------------------
// Exports: rows [r0, r1) of a rows x cols matrix at `w`, times n vectors.
// The row range lets several workers split one product.

#define MATVEC(name, type_bytes, block, call)                                       \
  EXPORT(#name)                                                                     \
  void name(const uint8_t* w, int rows, int cols, int n, int r0, int r1,            \
            const int8_t* yq, const double* yd, const int32_t* ys, float* out) {    \
    int nb = cols / (block);                                                        \
    (void)ys;                                                                       \
    for (int r = r0; r < r1; r++) {                                                 \
      const uint8_t* row = w + (long)r * nb * (type_bytes);                          \
      for (int v = 0; v < n; v++) {                                                 \
        const int8_t* y = yq + (long)v * cols;                                      \
        const double* d = yd + (long)v * nb;                                        \
        const int32_t* s = ys + (long)v * (cols / 16);                              \
        (void)s;                                                                    \
        out[(long)v * rows + r] = (float)(call);                                    \
      }                                                                             \
    }                                                                               \
  }

MATVEC(matvec_q8_0, 34, 32, row_q8_0(row, nb, y, d))
MATVEC(matvec_q4_0, 18, 32, row_q4_0(row, nb, y, d, s))
MATVEC(matvec_q4_k, 144, 256, row_q4_k(row, nb, y, d, s))
MATVEC(matvec_q5_k, 176, 256, row_q5_k(row, nb, y, d, s))
MATVEC(matvec_q6_k, 210, 256, row_q6_k(row, nb, y, d, s))
MATVEC(matvec_q5_0, 22, 32, row_q5_0(row, nb, y, d, s))
MATVEC(matvec_q5_1, 24, 32, row_q5_1(row, nb, y, d, (const double*)s))
MATVEC(matvec_q2_k, 84, 256, row_q2_k(row, nb, y, d, s))
MATVEC(matvec_q3_k, 110, 256, row_q3_k(row, nb, y, d, s))
MATVEC(matvec_iq4_nl, 18, 32, row_iq4_nl(row, nb, y, d))
MATVEC(matvec_iq4_xs, 136, 256, row_iq4_xs(row, nb, y, d))
MATVEC(matvec_mxfp4, 17, 32, row_mxfp4(row, nb, y, d))

// ---------------------------------------------------------------------------
// Q4_0 times groups of four vectors (prefill, batched decode). Within a group
// the activation levels are interleaved by 4-element chunk, [chunk][vector]
// (16 bytes per chunk), so one i8 dot of a chunk of weights splatted to all
// four lanes against those 16 bytes adds each vector's four products to its
// own lane: a block's four integer sums come out in one i32x4, no horizontal
// reduction. Each weight block is loaded and split once per row pass for up
// to eight vectors, and the f64 sums run two vectors per f64x2. Per lane this
// is the expression row_q4_0 evaluates, (sum - off) * (d_w * d_y) added in
// block order, so every output equals the one-vector kernel's bit for bit.
//
// Group g: interleaved levels at yT + g * 4 * cols; `ydT` and `negOffT` (the
// offsets negated, to start the integer sums) are transposed alike,
// [g][block][4], so one load serves four vectors.

// Lane v + the dot of weight levels w[4v..4v+3] (in [0, 15]) with y's.
static inline v128_t dot4u(v128_t acc, v128_t w, v128_t y) {
#ifdef RELAXED
  return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(y, w, acc);
#else
  v128_t a = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_low_i8x16(w, y));
  v128_t b = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_high_i8x16(w, y));
  return wasm_i32x4_add(acc, wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6),
                                            wasm_i32x4_shuffle(a, b, 1, 3, 5, 7)));
#endif
}

#define SPLAT32(v, k) wasm_i32x4_shuffle(v, v, k, k, k, k)

#ifdef RELAXED
// i16 lane 2v + 2v' (v' in 0, 1): vector v's sum of w[4v + 2v'..] * y's, two products, where
// `w` (weight levels in [0, 15]) holds one chunk splatted to every vector.
static inline v128_t pairs4u(v128_t w, const int8_t* y) { return pairs16u(w, load(y)); }
#endif

// The four vectors' dots with 32 weight levels in [0, 15] (eight splatted chunks in `c`): `y`
// is their 128 interleaved bytes. With relaxed SIMD the products add up in i16 and widen once
// (one instruction a chunk where the i32 dot takes three on x86 without VNNI): each lane then
// sums 16 products of levels <= 15 and activations <= 128 in magnitude, at most 30720, so
// nothing overflows and the sums are the same exact integers. Otherwise two chains of i32
// dots, to overlap their latency.
static inline v128_t dot32_x4(const v128_t* c, const int8_t* y) {
#ifdef RELAXED
  v128_t a = wasm_i16x8_add(pairs4u(c[0], y), pairs4u(c[1], y + 16));
  v128_t b = wasm_i16x8_add(pairs4u(c[2], y + 32), pairs4u(c[3], y + 48));
  a = wasm_i16x8_add(a, wasm_i16x8_add(pairs4u(c[4], y + 64), pairs4u(c[5], y + 80)));
  b = wasm_i16x8_add(b, wasm_i16x8_add(pairs4u(c[6], y + 96), pairs4u(c[7], y + 112)));
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(a, b));
#else
  v128_t z = wasm_i32x4_splat(0);
  v128_t a = dot4u(dot4u(z, c[0], load(y)), c[1], load(y + 16));
  v128_t b = dot4u(dot4u(z, c[2], load(y + 32)), c[3], load(y + 48));
  a = dot4u(dot4u(a, c[4], load(y + 64)), c[5], load(y + 80));
  b = dot4u(dot4u(b, c[6], load(y + 96)), c[7], load(y + 112));
  return wasm_i32x4_add(a, b);
#endif
}

// The four vectors' integer sums for one block, less their offsets.
static inline v128_t q4_0_sums4(const v128_t* c, const int8_t* y, v128_t neg_off) {
  return wasm_i32x4_add(neg_off, dot32_x4(c, y));
}

// Four vectors' f64 sums. The native build on x86 keeps them in one 256-bit
// register (half the f64 instructions of two f64x2); each lane takes the
// same two roundings either way.
#if defined(__AVX__) && !defined(__wasm__)
typedef __m256d acc4_t;
static inline acc4_t acc4_zero(void) { return _mm256_setzero_pd(); }
// acc + s * (dw * dy), lane by lane.
static inline acc4_t acc4_add(acc4_t acc, v128_t s, double dw, const double* dy) {
  __m256d p = _mm256_mul_pd(_mm256_set1_pd(dw), _mm256_loadu_pd(dy));
  return _mm256_add_pd(acc, _mm256_mul_pd(_mm256_cvtepi32_pd((__m128i)s), p));
}
static inline double acc4_lane(acc4_t a, int k) { return a[k]; }
#else
typedef struct {
  v128_t lo, hi;
} acc4_t;
static inline acc4_t acc4_zero(void) { return (acc4_t){wasm_f64x2_splat(0), wasm_f64x2_splat(0)}; }
static inline acc4_t acc4_add(acc4_t acc, v128_t s, double dw, const double* dy) {
  v128_t d = wasm_f64x2_splat(dw);
  acc.lo = wasm_f64x2_add(acc.lo, wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(s),
                                                 wasm_f64x2_mul(d, load(dy))));
  v128_t s23 = wasm_i32x4_shuffle(s, s, 2, 3, 2, 3);
  acc.hi = wasm_f64x2_add(acc.hi, wasm_f64x2_mul(wasm_f64x2_convert_low_i32x4(s23),
                                                 wasm_f64x2_mul(d, load(dy + 2))));
  return acc;
}
static inline double acc4_lane(acc4_t a, int k) {
  return k < 2 ? (k ? wasm_f64x2_extract_lane(a.lo, 1) : wasm_f64x2_extract_lane(a.lo, 0))
               : (k == 3 ? wasm_f64x2_extract_lane(a.hi, 1) : wasm_f64x2_extract_lane(a.hi, 0));
}
#endif

static inline void store_acc4(const acc4_t* acc, int ng, float* out, int rows) {
  for (int g = 0; g < ng; g++) {
    for (int k = 0; k < 4; k++) out[(long)(4 * g + k) * rows] = (float)acc4_lane(acc[g], k);
  }
}

// Block b of one row times `ng` groups (1 or 2, a constant after inlining).
static inline __attribute__((always_inline)) void q4_0_block_x4(
    const uint8_t* wb, double dw, int b, int cols, int nb, const int8_t* yT, const double* ydT,
    const int32_t* negOffT, int ng, acc4_t* acc) {
  v128_t q = load(wb + 2);
  v128_t lo = wasm_v128_and(q, wasm_i8x16_splat(15)), hi = wasm_u8x16_shr(q, 4);
  // Elements 0-15 are the low nibbles, 16-31 the high ones.
  v128_t c[8] = {SPLAT32(lo, 0), SPLAT32(lo, 1), SPLAT32(lo, 2), SPLAT32(lo, 3),
                 SPLAT32(hi, 0), SPLAT32(hi, 1), SPLAT32(hi, 2), SPLAT32(hi, 3)};
  for (int g = 0; g < ng; g++) {
    long i = 4L * (g * nb + b);
    v128_t s = q4_0_sums4(c, yT + 4L * g * cols + 128L * b, load(negOffT + i));
    acc[g] = acc4_add(acc[g], s, dw, ydT + i);
  }
}

static inline __attribute__((always_inline)) void row_q4_0_x4(
    const uint8_t* w, int nb, int cols, const int8_t* yT, const double* ydT,
    const int32_t* negOffT, int ng, float* out, int rows) {
  // Zeroed as far as used: clang makes a zeroing loop a memset, which WASM lacks.
  acc4_t acc[4];
  acc[0] = acc4_zero();
  if (ng > 1) acc[1] = acc4_zero();
  if (ng > 2) acc[2] = acc[3] = acc4_zero();
  int b = 0;
  for (; b + 4 <= nb; b += 4) {
    v128_t f = fp16x4(w + 18 * b, 18);
    double dw[4] = {wasm_f32x4_extract_lane(f, 0), wasm_f32x4_extract_lane(f, 1),
                    wasm_f32x4_extract_lane(f, 2), wasm_f32x4_extract_lane(f, 3)};
    for (int k = 0; k < 4; k++) {
      q4_0_block_x4(w + 18 * (b + k), dw[k], b + k, cols, nb, yT, ydT, negOffT, ng, acc);
    }
  }
  for (; b < nb; b++) {
    q4_0_block_x4(w + 18 * b, fp16(w + 18 * b), b, cols, nb, yT, ydT, negOffT, ng, acc);
  }
  store_acc4(acc, ng, out, rows);
}

// Q8_0 for four vectors per group: its signed levels are split as
// (w & 127) - 128 * (w < 0), so both parts are dots of 7-bit levels; the
// difference is the exact integer sum row_q8_0 takes.
static inline __attribute__((always_inline)) void q8_0_block_x4(
    const uint8_t* wb, double dw, int b, int cols, const int8_t* yT, const double* ydT,
    int nb, int ng, acc4_t* acc) {
  v128_t q0 = load(wb + 2), q1 = load(wb + 18);
  v128_t u0 = wasm_v128_and(q0, wasm_i8x16_splat(127)), u1 = wasm_v128_and(q1, wasm_i8x16_splat(127));
  v128_t n0 = wasm_u8x16_shr(q0, 7), n1 = wasm_u8x16_shr(q1, 7);
  v128_t cu[8] = {SPLAT32(u0, 0), SPLAT32(u0, 1), SPLAT32(u0, 2), SPLAT32(u0, 3),
                  SPLAT32(u1, 0), SPLAT32(u1, 1), SPLAT32(u1, 2), SPLAT32(u1, 3)};
  v128_t cn[8] = {SPLAT32(n0, 0), SPLAT32(n0, 1), SPLAT32(n0, 2), SPLAT32(n0, 3),
                  SPLAT32(n1, 0), SPLAT32(n1, 1), SPLAT32(n1, 2), SPLAT32(n1, 3)};
  for (int g = 0; g < ng; g++) {
    const int8_t* y = yT + 4L * g * cols + 128L * b;
    v128_t z = wasm_i32x4_splat(0), u = z, m = z;
    for (int k = 0; k < 8; k++) {
      v128_t yk = load(y + 16 * k);
      u = dot4u(u, cu[k], yk);
      m = dot4u(m, cn[k], yk);
    }
    acc[g] = acc4_add(acc[g], wasm_i32x4_sub(u, wasm_i32x4_shl(m, 7)), dw, ydT + 4L * (g * nb + b));
  }
}

static inline void store_x4(const v128_t* acc, int ng, float* out, int rows) {
  for (int g = 0; g < ng; g++) {
    out[(long)(4 * g) * rows] = (float)wasm_f64x2_extract_lane(acc[2 * g], 0);
    out[(long)(4 * g + 1) * rows] = (float)wasm_f64x2_extract_lane(acc[2 * g], 1);
    out[(long)(4 * g + 2) * rows] = (float)wasm_f64x2_extract_lane(acc[2 * g + 1], 0);
    out[(long)(4 * g + 3) * rows] = (float)wasm_f64x2_extract_lane(acc[2 * g + 1], 1);
  }
}

static inline __attribute__((always_inline)) void row_q8_0_x4(
    const uint8_t* w, int nb, int cols, const int8_t* yT, const double* ydT, const int32_t* aux,
    int ng, float* out, int rows) {
  (void)aux;
  acc4_t acc[2] = {acc4_zero(), acc4_zero()};
  int b = 0;
  for (; b + 4 <= nb; b += 4) {
    v128_t f = fp16x4(w + 34 * b, 34);
    double dw[4] = {wasm_f32x4_extract_lane(f, 0), wasm_f32x4_extract_lane(f, 1),
                    wasm_f32x4_extract_lane(f, 2), wasm_f32x4_extract_lane(f, 3)};
    for (int k = 0; k < 4; k++) q8_0_block_x4(w + 34 * (b + k), dw[k], b + k, cols, yT, ydT, nb, ng, acc);
  }
  for (; b < nb; b++) q8_0_block_x4(w + 34 * b, fp16(w + 34 * b), b, cols, yT, ydT, nb, ng, acc);
  store_acc4(acc, ng, out, rows);
}

// The four vectors' dots with the 16 weight levels in `c` (four splatted
// chunks): `y` is their 64 interleaved bytes.
static inline v128_t dot16_x4(const v128_t* c, const int8_t* y) {
  v128_t z = wasm_i32x4_splat(0);
  v128_t a = dot4u(dot4u(z, c[0], load(y)), c[1], load(y + 16));
  v128_t b = dot4u(dot4u(z, c[2], load(y + 32)), c[3], load(y + 48));
  return wasm_i32x4_add(a, b);
}

static inline void splat4(v128_t q, v128_t* c) {
  c[0] = SPLAT32(q, 0);
  c[1] = SPLAT32(q, 1);
  c[2] = SPLAT32(q, 2);
  c[3] = SPLAT32(q, 3);
}

// acc[0], acc[1] += (d * dy) * s - (dmin * dy) * m, lane by lane (row_q4_k's expression).
static inline void scale_sub_x4(v128_t s, v128_t m, double d, double dmin, const double* dy,
                                v128_t* acc) {
  for (int h = 0; h < 2; h++) {
    v128_t dyh = load(dy + 2 * h);
    v128_t sh = h ? wasm_i32x4_shuffle(s, s, 2, 3, 2, 3) : s;
    v128_t mh = h ? wasm_i32x4_shuffle(m, m, 2, 3, 2, 3) : m;
    v128_t a = wasm_f64x2_mul(wasm_f64x2_mul(wasm_f64x2_splat(d), dyh), wasm_f64x2_convert_low_i32x4(sh));
    v128_t c = wasm_f64x2_mul(wasm_f64x2_mul(wasm_f64x2_splat(dmin), dyh), wasm_f64x2_convert_low_i32x4(mh));
    acc[h] = wasm_f64x2_add(acc[h], wasm_f64x2_sub(a, c));
  }
}

// K-quants for four vectors per group: `sT` holds each group's sums of 16
// activation levels, [g][block][16][4].
static inline __attribute__((always_inline)) void row_q4_k_x4(
    const uint8_t* w, int nb, int cols, const int8_t* yT, const double* ydT, const int32_t* sT,
    int ng, float* out, int rows) {
  v128_t acc[4] = {wasm_f64x2_splat(0), wasm_f64x2_splat(0), wasm_f64x2_splat(0),
                   wasm_f64x2_splat(0)};
  int32_t sc[8], mn[8];
  for (int b = 0; b < nb; b++, w += 144) {
    scales_mins(w + 4, sc, mn);
    v128_t isum[2] = {wasm_i32x4_splat(0), wasm_i32x4_splat(0)};
    for (int c = 0; c < 4; c++) {
      v128_t q0 = load(w + 16 + 32 * c), q1 = load(w + 32 + 32 * c);
      v128_t cl[8], ch[8];
      splat4(low4(q0), cl);
      splat4(low4(q1), cl + 4);
      splat4(high4(q0), ch);
      splat4(high4(q1), ch + 4);
      for (int g = 0; g < ng; g++) {
        const int8_t* y = yT + 4L * g * cols + 1024L * b + 256 * c;
        v128_t dl = dot32_x4(cl, y), dh = dot32_x4(ch, y + 128);
        isum[g] = wasm_i32x4_add(isum[g], wasm_i32x4_add(wasm_i32x4_mul(dl, wasm_i32x4_splat(sc[2 * c])),
                                                         wasm_i32x4_mul(dh, wasm_i32x4_splat(sc[2 * c + 1]))));
      }
    }
    double d = fp16(w), dmin = fp16(w + 2);
    for (int g = 0; g < ng; g++) {
      const int32_t* s = sT + 4L * g * (cols / 16) + 64L * b;
      v128_t m = wasm_i32x4_splat(0);
      for (int j = 0; j < 8; j++) {
        m = wasm_i32x4_add(m, wasm_i32x4_mul(wasm_i32x4_splat(mn[j]),
                                             wasm_i32x4_add(load(s + 8 * j), load(s + 8 * j + 4))));
      }
      scale_sub_x4(isum[g], m, d, dmin, ydT + 4L * (g * nb + b), acc + 2 * g);
    }
  }
  store_x4(acc, ng, out, rows);
}

static inline __attribute__((always_inline)) void row_q6_k_x4(
    const uint8_t* w, int nb, int cols, const int8_t* yT, const double* ydT, const int32_t* sT,
    int ng, float* out, int rows) {
  const v128_t m30 = wasm_i8x16_splat(0x30);
  v128_t acc[4] = {wasm_f64x2_splat(0), wasm_f64x2_splat(0), wasm_f64x2_splat(0),
                   wasm_f64x2_splat(0)};
  for (int b = 0; b < nb; b++, w += 210) {
    const int8_t* scales = (const int8_t*)(w + 192);
    v128_t isum[2] = {wasm_i32x4_splat(0), wasm_i32x4_splat(0)};
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      for (int gq = 0; gq < 2; gq++) {
        v128_t p = load(ql + 16 * gq), e = load(ql + 32 + 16 * gq), h = load(qh + 16 * gq);
        v128_t q[4] = {wasm_v128_or(low4(p), wasm_v128_and(wasm_i16x8_shl(h, 4), m30)),
                       wasm_v128_or(low4(e), wasm_v128_and(wasm_i16x8_shl(h, 2), m30)),
                       wasm_v128_or(high4(p), wasm_v128_and(h, m30)),
                       wasm_v128_or(high4(e), wasm_v128_and(wasm_u16x8_shr(h, 2), m30))};
        for (int k = 0; k < 4; k++) {
          v128_t c[4];
          splat4(q[k], c);
          v128_t scale = wasm_i32x4_splat(sc[gq + 2 * k]);
          // Levels q[k] are values 128 * half + 32 * k + 16 * gq + 0..15.
          long at = 4L * (128 * half + 32 * k + 16 * gq);
          for (int g = 0; g < ng; g++) {
            const int8_t* y = yT + 4L * g * cols + 1024L * b + at;
            isum[g] = wasm_i32x4_add(isum[g], wasm_i32x4_mul(dot16_x4(c, y), scale));
          }
        }
      }
    }
    double d = fp16(w + 208);
    for (int g = 0; g < ng; g++) {
      const int32_t* s = sT + 4L * g * (cols / 16) + 64L * b;
      v128_t off = wasm_i32x4_splat(0);
      for (int j = 0; j < 16; j++) {
        off = wasm_i32x4_add(off, wasm_i32x4_mul(wasm_i32x4_splat(scales[j]), load(s + 4 * j)));
      }
      v128_t t = wasm_i32x4_sub(isum[g], wasm_i32x4_shl(off, 5));
      const double* dy = ydT + 4L * (g * nb + b);
      v128_t dd = wasm_f64x2_splat(d);
      acc[2 * g] = wasm_f64x2_add(acc[2 * g], wasm_f64x2_mul(wasm_f64x2_mul(dd, load(dy)),
                                                             wasm_f64x2_convert_low_i32x4(t)));
      v128_t t23 = wasm_i32x4_shuffle(t, t, 2, 3, 2, 3);
      acc[2 * g + 1] = wasm_f64x2_add(acc[2 * g + 1], wasm_f64x2_mul(wasm_f64x2_mul(dd, load(dy + 2)),
                                                                     wasm_f64x2_convert_low_i32x4(t23)));
    }
  }
  store_x4(acc, ng, out, rows);
}

// Rows [r0, r1) times n4 groups of four vectors; out[v * rows + r] as
// matvec_*. Rows go in tiles of ~64 KiB of weights, each tile passed over by
// every pass of groups while it is in L2: many vectors' levels do not fit the
// cache a row at a time. `aux` per group: Q4_0's negated offsets ([block][4]),
// the K-quants' sums of 16 levels ([block][16][4]), nothing for Q8_0.
#define TILE_BYTES 65536
// Up to `groups` groups (2, or 4) go per row pass: each block's levels are split and splatted
// once for all of them. Q4_0 takes four (its WASM kernel ran ~9% faster on x86 at 128 vectors
// than with two); the others' rows keep two groups' sums in registers.
#define MATMAT(name, type_bytes, block, aux_per_group, rowfn, groups)                          \
  EXPORT(#name)                                                                                \
  void name(const uint8_t* w, int rows, int cols, int n4, int r0, int r1, const int8_t* yT,    \
            const double* ydT, const int32_t* aux, float* out) {                               \
    int nb = cols / (block);                                                                   \
    long rb = (long)nb * (type_bytes), ag = (long)(aux_per_group);                             \
    int tile = rb >= TILE_BYTES ? 1 : (int)(TILE_BYTES / rb);                                  \
    for (int t0 = r0; t0 < r1; t0 += tile) {                                                   \
      int t1 = r1 - t0 > tile ? t0 + tile : r1;                                                \
      for (int g = 0, ng; g < n4; g += ng) {                                                   \
        ng = (groups) >= 4 && n4 - g >= 4 ? 4 : n4 - g >= 2 ? 2 : 1;                           \
        const int8_t* y = yT + 4L * g * cols;                                                  \
        const double* d = ydT + 4L * g * nb;                                                   \
        const int32_t* a = aux + ag * g;                                                       \
        float* o = out + 4L * g * rows;                                                        \
        if ((groups) >= 4 && ng == 4) {                                                        \
          for (int r = t0; r < t1; r++) rowfn(w + r * rb, nb, cols, y, d, a, 4, o + r, rows);  \
        } else if (ng == 2) {                                                                  \
          for (int r = t0; r < t1; r++) rowfn(w + r * rb, nb, cols, y, d, a, 2, o + r, rows);  \
        } else {                                                                               \
          for (int r = t0; r < t1; r++) rowfn(w + r * rb, nb, cols, y, d, a, 1, o + r, rows);  \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }

MATMAT(matvec_q4_0_x4, 18, 32, 4 * nb, row_q4_0_x4, 4)
MATMAT(matvec_q8_0_x4, 34, 32, 0, row_q8_0_x4, 2)
MATMAT(matvec_q4_k_x4, 144, 256, 4 * (cols / 16), row_q4_k_x4, 2)
MATMAT(matvec_q6_k_x4, 210, 256, 4 * (cols / 16), row_q6_k_x4, 2)

#ifndef __wasm__
// Q4_0 for eight vectors per group, in the native build only (256-bit
// registers): levels interleaved [g][chunk][8 vectors] (32 bytes per chunk),
// scales and negated offsets [g][block][8]. One i8 dot of a splatted weight
// chunk adds to all eight vectors' sums; per lane this is row_q4_0_x4's
// expression, so the outputs equal the other kernels' bit for bit.
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef double f64x4 __attribute__((vector_size(32)));

static inline i32x8 load8(const void* p) {
  i32x8 v;
  memcpy(&v, p, 32);
  return v;
}

// acc + each lane's dot of four weight levels (in [0, 15]) with y's.
static inline i32x8 dot8u(i32x8 acc, i32x8 w, const int8_t* y) {
  i32x8 yv = load8(y);
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return (i32x8)_mm256_dpbusd_epi32((__m256i)acc, (__m256i)w, (__m256i)yv);
#elif defined(__AVXVNNI__)
  return (i32x8)_mm256_dpbusd_avx_epi32((__m256i)acc, (__m256i)w, (__m256i)yv);
#else
  v128_t lo = dot4u(__builtin_shufflevector(acc, acc, 0, 1, 2, 3), __builtin_shufflevector(w, w, 0, 1, 2, 3),
                    __builtin_shufflevector(yv, yv, 0, 1, 2, 3));
  v128_t hi = dot4u(__builtin_shufflevector(acc, acc, 4, 5, 6, 7), __builtin_shufflevector(w, w, 4, 5, 6, 7),
                    __builtin_shufflevector(yv, yv, 4, 5, 6, 7));
  return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
#endif
}

typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));

// Eight vectors' f64 sums: one 512-bit register where the CPU has them (one conversion, one
// multiply, one add a block instead of two of each and a lane extract), else two of 256 bits.
// Each lane takes the same two roundings either way.
#if defined(__AVX512F__)
typedef f64x8 acc8_t;
static inline acc8_t acc8_zero(void) { return (f64x8){0}; }
// acc + s * (dw * dy), lane by lane.
__attribute__((unused)) static inline acc8_t acc8_add(acc8_t acc, i32x8 s, double dw,
                                                      const double* dy) {
  f64x8 d;
  memcpy(&d, dy, 64);
  return acc + __builtin_convertvector(s, f64x8) * ((f64x8){dw, dw, dw, dw, dw, dw, dw, dw} * d);
}
static inline double acc8_lane(acc8_t a, int k) { return a[k]; }
#else
typedef struct {
  f64x4 lo, hi;
} acc8_t;
static inline acc8_t acc8_zero(void) { return (acc8_t){{0, 0, 0, 0}, {0, 0, 0, 0}}; }
static inline acc8_t acc8_add(acc8_t acc, i32x8 s, double dw, const double* dy) {
  f64x4 d = {dw, dw, dw, dw}, dy0, dy1;
  memcpy(&dy0, dy, 32);
  memcpy(&dy1, dy + 4, 32);
  acc.lo += __builtin_convertvector(__builtin_shufflevector(s, s, 0, 1, 2, 3), f64x4) * (d * dy0);
  acc.hi += __builtin_convertvector(__builtin_shufflevector(s, s, 4, 5, 6, 7), f64x4) * (d * dy1);
  return acc;
}
static inline double acc8_lane(acc8_t a, int k) { return k < 4 ? a.lo[k] : a.hi[k - 4]; }
#endif

// Bytes p[0..3] in every lane.
static inline i32x8 broadcast8(const uint8_t* p) {
  int32_t x;
  memcpy(&x, p, 4);
  i32x8 v = (i32x8){x, x, x, x, x, x, x, x};
  // Kept a vector: clang would otherwise split the nibbles in scalar registers and broadcast
  // each one with a shuffle, the port this avoids.
  __asm__("" : "+x"(v));
  return v;
}
// Their low nibbles, and their high ones, in every lane.
// (Unused where AVX-512 VNNI's q4_0_block_x8 below takes the place of the portable one.)
__attribute__((unused)) static inline i32x8 low8(const uint8_t* p) {
  return broadcast8(p) & 0x0f0f0f0f;
}
__attribute__((unused)) static inline i32x8 high8(const uint8_t* p) {
  return (i32x8)(((u32x8)broadcast8(p) >> 4) & 0x0f0f0f0f);
}

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
// The same block on AVX-512 VNNI, in fewer operations: the high nibbles are masked in place
// (16 times their level, no shift) into their own sum, which is then exactly 16 times theirs;
// and s * (dw * dy) is exact in f64 (a 16-bit integer times an f16 times a q8 scale: 51 bits
// at most), so a fused multiply-add rounds once where acc8_add rounds once: the same bits.
static inline __attribute__((always_inline)) void q4_0_block_x8(const uint8_t* wb, double dw,
                                                                const int8_t* y, const double* dy,
                                                                const int32_t* neg_off,
                                                                acc8_t* acc) {
  const uint8_t* q = wb + 2;
  // Each 4-byte chunk broadcast once for both its nibbles.
  i32x8 v0 = broadcast8(q), v1 = broadcast8(q + 4), v2 = broadcast8(q + 8),
        v3 = broadcast8(q + 12);
  const int32_t lo = 0x0f0f0f0f, hi = (int32_t)0xf0f0f0f0u;
  i32x8 a = load8(neg_off), b = {0}, h = {0}, g = {0};
  a = dot8u(a, v0 & lo, y);
  b = dot8u(b, v1 & lo, y + 32);
  a = dot8u(a, v2 & lo, y + 64);
  b = dot8u(b, v3 & lo, y + 96);
  h = dot8u(h, v0 & hi, y + 128);
  g = dot8u(g, v1 & hi, y + 160);
  h = dot8u(h, v2 & hi, y + 192);
  g = dot8u(g, v3 & hi, y + 224);
  i32x8 s = (i32x8)((u32x8)a + (u32x8)b + (u32x8)((h + g) >> 4));
  f64x8 d;
  memcpy(&d, dy, 64);
  d *= (f64x8){dw, dw, dw, dw, dw, dw, dw, dw};
  *acc = __builtin_elementwise_fma(__builtin_convertvector(s, f64x8), d, *acc);
}
#else
static inline __attribute__((always_inline)) void q4_0_block_x8(const uint8_t* wb, double dw,
                                                                const int8_t* y, const double* dy,
                                                                const int32_t* neg_off, acc8_t* acc) {
  // Each 4-byte chunk of levels is broadcast straight from memory (a load, not a shuffle:
  // shuffles were this loop's bottleneck), then split into its low and high nibbles.
  const uint8_t* q = wb + 2;
  i32x8 a = load8(neg_off), b = {0};
  a = dot8u(a, low8(q), y);
  b = dot8u(b, low8(q + 4), y + 32);
  a = dot8u(a, low8(q + 8), y + 64);
  b = dot8u(b, low8(q + 12), y + 96);
  a = dot8u(a, high8(q), y + 128);
  b = dot8u(b, high8(q + 4), y + 160);
  a = dot8u(a, high8(q + 8), y + 192);
  b = dot8u(b, high8(q + 12), y + 224);
  *acc = acc8_add(*acc, (i32x8)((u32x8)a + (u32x8)b), dw, dy);
}
#endif

// Blocks [b0, b1) of one row into `acc`, in block order; the weights `ahead` bytes on are asked
// for as it goes (prefetch_lines).
static inline __attribute__((always_inline)) void part_q4_0_x8(const uint8_t* w, int b0, int b1,
                                                               const int8_t* yT,
                                                               const double* ydT,
                                                               const int32_t* negOffT,
                                                               acc8_t* acc, long ahead) {
  acc8_t a = *acc;
  int b = b0;
  for (; b + 4 <= b1; b += 4) {
    prefetch_lines(w + 18 * b + ahead);
    v128_t f = fp16x4(w + 18 * b, 18);
    for (int k = 0; k < 4; k++) {
      q4_0_block_x8(w + 18 * (b + k), ((g_f32x4)f)[k], yT + 256L * (b + k), ydT + 8L * (b + k),
                    negOffT + 8L * (b + k), &a);
    }
  }
  for (; b < b1; b++) {
    q4_0_block_x8(w + 18 * b, fp16(w + 18 * b), yT + 256L * b, ydT + 8L * b, negOffT + 8L * b, &a);
  }
  *acc = a;
}

// One row's eight sums. Rows lie back to back, so asking PREFETCH_AHEAD bytes on runs on into
// the next row's weights.
static inline __attribute__((always_inline)) void row_q4_0_x8(const uint8_t* w, int nb,
                                                              const int8_t* yT, const double* ydT,
                                                              const int32_t* negOffT, float* out,
                                                              int rows) {
  acc8_t acc = acc8_zero();
  part_q4_0_x8(w, 0, nb, yT, ydT, negOffT, &acc, PREFETCH_AHEAD);
  for (int k = 0; k < 8; k++) out[(long)k * rows] = (float)acc8_lane(acc, k);
}

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
// Q4_0 for sixteen vectors per group, where the CPU has 512-bit registers and their i8 dot:
// levels interleaved [g][chunk][16 vectors] (64 bytes per chunk), scales and negated offsets
// [g][block][16]. Each weight chunk is broadcast and split into nibbles once for sixteen
// vectors; per lane the expression is row_q4_0_x4's, so every output equals the other
// kernels' bit for bit.
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));

static inline i32x16 load16(const void* p) {
  i32x16 v;
  memcpy(&v, p, 64);
  return v;
}

static inline i32x16 broadcast16(const uint8_t* p) {
  int32_t x;
  memcpy(&x, p, 4);
  i32x16 v = (i32x16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
  __asm__("" : "+v"(v));  // a broadcast load, not scalar nibbles and shuffles (broadcast8)
  return v;
}
static inline i32x16 low16(const uint8_t* p) { return broadcast16(p) & 0x0f0f0f0f; }
static inline i32x16 high16(const uint8_t* p) {
  return (i32x16)(((u32x16)broadcast16(p) >> 4) & 0x0f0f0f0f);
}
static inline i32x16 dot16x16(i32x16 acc, i32x16 w, const int8_t* y) {
  return (i32x16)_mm512_dpbusd_epi32((__m512i)acc, (__m512i)w, (__m512i)load16(y));
}

static inline __attribute__((always_inline)) void q4_0_block_x16(const uint8_t* wb, double dw,
                                                                 const int8_t* y, const double* dy,
                                                                 const int32_t* neg_off,
                                                                 f64x8* acc) {
  const uint8_t* q = wb + 2;
  i32x16 a = load16(neg_off), b = {0};
  a = dot16x16(a, low16(q), y);
  b = dot16x16(b, low16(q + 4), y + 64);
  a = dot16x16(a, low16(q + 8), y + 128);
  b = dot16x16(b, low16(q + 12), y + 192);
  a = dot16x16(a, high16(q), y + 256);
  b = dot16x16(b, high16(q + 4), y + 320);
  a = dot16x16(a, high16(q + 8), y + 384);
  b = dot16x16(b, high16(q + 12), y + 448);
  i32x16 s = (i32x16)((u32x16)a + (u32x16)b);
  f64x8 d = {dw, dw, dw, dw, dw, dw, dw, dw}, dy0, dy1;
  memcpy(&dy0, dy, 64);
  memcpy(&dy1, dy + 8, 64);
  acc[0] += __builtin_convertvector(__builtin_shufflevector(s, s, 0, 1, 2, 3, 4, 5, 6, 7), f64x8) *
            (d * dy0);
  acc[1] += __builtin_convertvector(__builtin_shufflevector(s, s, 8, 9, 10, 11, 12, 13, 14, 15),
                                    f64x8) *
            (d * dy1);
}

// Blocks [b0, b1) of one row into `acc` (16 lanes as two f64x8), in block order; the weights
// `ahead` bytes on are asked for as it goes (prefetch_lines).
static inline __attribute__((always_inline)) void row_q4_0_x16(const uint8_t* w, int b0, int b1,
                                                               const int8_t* yT, const double* ydT,
                                                               const int32_t* negOffT,
                                                               f64x8* acc, long ahead) {
  int b = b0;
  for (; b + 4 <= b1; b += 4) {
    prefetch_lines(w + 18 * b + ahead);
    v128_t f = fp16x4(w + 18 * b, 18);
    for (int k = 0; k < 4; k++) {
      q4_0_block_x16(w + 18 * (b + k), ((g_f32x4)f)[k], yT + 512L * (b + k),
                     ydT + 16L * (b + k), negOffT + 16L * (b + k), acc);
    }
  }
  for (; b < b1; b++) {
    q4_0_block_x16(w + 18 * b, fp16(w + 18 * b), yT + 512L * b, ydT + 16L * b,
                   negOffT + 16L * b, acc);
  }
}

// Columns go in chunks of this many blocks: one group's levels, scales and offsets for a
// chunk (16 KB of levels) stay in L1 over every row of a tile, where a whole row's (up to
// 90 KB for an FFN's down matrix) streamed from L2 for each row. Each (row, vector) sum still
// adds its blocks in order, carried from chunk to chunk.
#define CHUNK_BLOCKS 32
#define CHUNK_ROWS 64

// Rows [r0, r1) times n16 groups of sixteen vectors, in row tiles and column chunks.
EXPORT("matvec_q4_0_x16")
void matvec_q4_0_x16(const uint8_t* w, int rows, int cols, int n16, int r0, int r1,
                     const int8_t* yT, const double* ydT, const int32_t* negOffT, float* out) {
  int nb = cols / 32;
  long rb = (long)nb * 18;
  f64x8 acc[CHUNK_ROWS][2];
  for (int t0 = r0; t0 < r1; t0 += CHUNK_ROWS) {
    int t1 = r1 - t0 > CHUNK_ROWS ? t0 + CHUNK_ROWS : r1;
    for (int g = 0; g < n16; g++) {
      const int8_t* y = yT + 16L * g * cols;
      const double* d = ydT + 16L * g * nb;
      const int32_t* o = negOffT + 16L * g * nb;
      for (int r = t0; r < t1; r++) acc[r - t0][0] = acc[r - t0][1] = (f64x8){0};
      for (int c0 = 0; c0 < nb; c0 += CHUNK_BLOCKS) {
        int c1 = nb - c0 > CHUNK_BLOCKS ? c0 + CHUNK_BLOCKS : nb;
        for (int r = t0; r < t1; r++) row_q4_0_x16(w + r * rb, c0, c1, y, d, o, acc[r - t0], rb);
      }
      float* dst = out + 16L * g * rows;
      for (int r = t0; r < t1; r++) {
        for (int k = 0; k < 16; k++) dst[(long)k * rows + r] = (float)acc[r - t0][k >> 3][k & 7];
      }
    }
  }
}
#endif

#if !defined(__wasm__)
// A row's eight vectors take 11 bytes a column (levels, scales, offsets): past 64 blocks (an
// FFN's down matrix: 176) they outgrow a 32 KiB L1 and stream from L2 for every row. There the
// columns go in chunks of 64 blocks over tiles of 16 rows, each (row, vector) sum carried from
// chunk to chunk in block order, and each row asks ahead for the next one's chunk (the tile's
// last row for its first row's next chunk). Measured on the 1.1B's down matrix, weights from
// memory: 3.41 ns a block against whole rows' 3.69.
#define X8_CHUNK_BLOCKS 64
#define X8_CHUNK_ROWS 16

static void matvec_q4_0_x8_chunked(const uint8_t* w, int rows, int nb, int n8, int r0, int r1,
                                   const int8_t* yT, const double* ydT, const int32_t* negOffT,
                                   float* out) {
  long rb = (long)nb * 18;
  acc8_t acc[X8_CHUNK_ROWS];
  for (int t0 = r0; t0 < r1; t0 += X8_CHUNK_ROWS) {
    int t1 = r1 - t0 > X8_CHUNK_ROWS ? t0 + X8_CHUNK_ROWS : r1;
    for (int g = 0; g < n8; g++) {
      const int8_t* y = yT + 256L * g * nb;
      const double* d = ydT + 8L * g * nb;
      const int32_t* o = negOffT + 8L * g * nb;
      for (int r = t0; r < t1; r++) acc[r - t0] = acc8_zero();
      for (int c0 = 0; c0 < nb; c0 += X8_CHUNK_BLOCKS) {
        int c1 = nb - c0 > X8_CHUNK_BLOCKS ? c0 + X8_CHUNK_BLOCKS : nb;
        for (int r = t0; r < t1; r++) {
          long ahead = r + 1 < t1 ? rb : (t0 - r) * rb + 18L * (c1 - c0);
          part_q4_0_x8(w + r * rb, c0, c1, y, d, o, &acc[r - t0], ahead);
        }
      }
      float* dst = out + 8L * g * rows;
      for (int r = t0; r < t1; r++) {
        for (int k = 0; k < 8; k++) dst[(long)k * rows + r] = (float)acc8_lane(acc[r - t0], k);
      }
    }
  }
}
#endif

// Rows [r0, r1) times n8 groups of eight vectors, in row tiles as MATMAT.
EXPORT("matvec_q4_0_x8")
void matvec_q4_0_x8(const uint8_t* w, int rows, int cols, int n8, int r0, int r1,
                    const int8_t* yT, const double* ydT, const int32_t* negOffT, float* out) {
  int nb = cols / 32;
#if !defined(__wasm__)
  if (nb > X8_CHUNK_BLOCKS) {
    return matvec_q4_0_x8_chunked(w, rows, nb, n8, r0, r1, yT, ydT, negOffT, out);
  }
#endif
  long rb = (long)nb * 18;
  int tile = rb >= TILE_BYTES ? 1 : (int)(TILE_BYTES / rb);
  for (int t0 = r0; t0 < r1; t0 += tile) {
    int t1 = r1 - t0 > tile ? t0 + tile : r1;
    for (int g = 0; g < n8; g++) {
      for (int r = t0; r < t1; r++) {
        row_q4_0_x8(w + r * rb, nb, yT + 8L * g * cols, ydT + 8L * g * nb, negOffT + 8L * g * nb,
                    out + 8L * g * rows + r, rows);
      }
    }
  }
}

#if defined(__AVX2__) && defined(__F16C__)
#include "k-quants-grouped.h"
#endif
#endif
