// The subset of <wasm_simd128.h> that ../wasm/kernels.c uses, for a native
// build of the same source (build.ts): each intrinsic has WebAssembly's
// semantics, written with clang's vector extensions, and x86 instructions
// where the vector form would be slower (byte shuffles, i8 dots). The relaxed
// dots are defined for weights in [0, 127] only, where every instruction
// choice gives the exact integer sum, as in the WASM build.
#ifndef GROVE_NATIVE_WASM_SIMD128_H
#define GROVE_NATIVE_WASM_SIMD128_H

#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef int32_t v128_t __attribute__((vector_size(16), aligned(16)));
typedef int8_t g_i8x16 __attribute__((vector_size(16)));
typedef uint8_t g_u8x16 __attribute__((vector_size(16)));
typedef int16_t g_i16x8 __attribute__((vector_size(16)));
typedef uint16_t g_u16x8 __attribute__((vector_size(16)));
typedef uint32_t g_u32x4 __attribute__((vector_size(16)));
typedef int64_t g_i64x2 __attribute__((vector_size(16)));
typedef float g_f32x4 __attribute__((vector_size(16)));
typedef double g_f64x2 __attribute__((vector_size(16)));
typedef int32_t g_i32x2 __attribute__((vector_size(8)));
typedef float g_f32x2 __attribute__((vector_size(8)));
typedef int8_t g_i8x8 __attribute__((vector_size(8)));
typedef int16_t g_i16x4 __attribute__((vector_size(8)));

#define WI static inline __attribute__((always_inline))

WI v128_t wasm_v128_load(const void* p) {
  v128_t v;
  memcpy(&v, p, 16);
  return v;
}
WI v128_t wasm_v128_load16_lane(const void* p, v128_t v, int lane) {
  g_i16x8 t = (g_i16x8)v;
  int16_t x;
  memcpy(&x, p, 2);
  t[lane] = x;
  return (v128_t)t;
}
WI v128_t wasm_i32x4_splat(int32_t x) { return (v128_t){x, x, x, x}; }
WI v128_t wasm_i16x8_splat(int16_t x) { return (v128_t)((g_i16x8){0} + x); }
WI v128_t wasm_i8x16_splat(int8_t x) { return (v128_t)((g_i8x16){0} + x); }
WI v128_t wasm_f64x2_splat(double x) { return (v128_t)((g_f64x2){x, x}); }
WI v128_t wasm_f32x4_splat(float x) { return (v128_t)((g_f32x4){x, x, x, x}); }
#define wasm_i8x16_make(...) ((v128_t)(g_i8x16){__VA_ARGS__})

WI v128_t wasm_v128_and(v128_t a, v128_t b) { return a & b; }
WI v128_t wasm_v128_or(v128_t a, v128_t b) { return a | b; }
WI v128_t wasm_v128_bitselect(v128_t a, v128_t b, v128_t m) { return (a & m) | (b & ~m); }
WI int wasm_v128_any_true(v128_t a) {
  g_i64x2 t = (g_i64x2)a;
  return (t[0] | t[1]) != 0;
}

WI v128_t wasm_i32x4_add(v128_t a, v128_t b) { return (v128_t)((g_u32x4)a + (g_u32x4)b); }
WI v128_t wasm_i32x4_sub(v128_t a, v128_t b) { return (v128_t)((g_u32x4)a - (g_u32x4)b); }
WI v128_t wasm_i32x4_mul(v128_t a, v128_t b) { return (v128_t)((g_u32x4)a * (g_u32x4)b); }
WI v128_t wasm_i32x4_shl(v128_t a, int n) { return (v128_t)((g_u32x4)a << (n & 31)); }
WI v128_t wasm_i32x4_eq(v128_t a, v128_t b) { return (v128_t)(a == b); }
WI v128_t wasm_u32x4_lt(v128_t a, v128_t b) { return (v128_t)((g_u32x4)a < (g_u32x4)b); }
WI v128_t wasm_i16x8_add(v128_t a, v128_t b) { return (v128_t)((g_u16x8)a + (g_u16x8)b); }
WI v128_t wasm_i16x8_shl(v128_t a, int n) { return (v128_t)((g_u16x8)a << (n & 15)); }
WI v128_t wasm_u16x8_shr(v128_t a, int n) { return (v128_t)((g_u16x8)a >> (n & 15)); }
WI v128_t wasm_u8x16_shr(v128_t a, int n) { return (v128_t)((g_u8x16)a >> (n & 7)); }
WI v128_t wasm_i8x16_eq(v128_t a, v128_t b) { return (v128_t)((g_i8x16)a == (g_i8x16)b); }

#define wasm_i32x4_shuffle(a, b, c0, c1, c2, c3) \
  ((v128_t)__builtin_shufflevector((v128_t)(a), (v128_t)(b), c0, c1, c2, c3))
#define wasm_i32x4_extract_lane(a, i) (((v128_t)(a))[i])
#define wasm_f32x4_extract_lane(a, i) (((g_f32x4)(a))[i])
#define wasm_f64x2_extract_lane(a, i) (((g_f64x2)(a))[i])

WI v128_t wasm_i8x16_swizzle(v128_t a, v128_t idx) {
#if defined(__SSSE3__)
  // Indices 16 and up give 0: saturating +0x70 sets their top bit, which pshufb zeroes.
  return (v128_t)_mm_shuffle_epi8((__m128i)a, _mm_adds_epu8((__m128i)idx, _mm_set1_epi8(0x70)));
#else
  g_u8x16 t = (g_u8x16)a, i = (g_u8x16)idx, r;
  for (int k = 0; k < 16; k++) r[k] = i[k] < 16 ? t[i[k] & 15] : 0;
  return (v128_t)r;
#endif
}

WI v128_t wasm_i16x8_extmul_low_i8x16(v128_t a, v128_t b) {
  g_i16x8 x = __builtin_convertvector(
      __builtin_shufflevector((g_i8x16)a, (g_i8x16)a, 0, 1, 2, 3, 4, 5, 6, 7), g_i16x8);
  g_i16x8 y = __builtin_convertvector(
      __builtin_shufflevector((g_i8x16)b, (g_i8x16)b, 0, 1, 2, 3, 4, 5, 6, 7), g_i16x8);
  return (v128_t)((g_u16x8)x * (g_u16x8)y);
}
WI v128_t wasm_i16x8_extmul_high_i8x16(v128_t a, v128_t b) {
  g_i16x8 x = __builtin_convertvector(
      __builtin_shufflevector((g_i8x16)a, (g_i8x16)a, 8, 9, 10, 11, 12, 13, 14, 15), g_i16x8);
  g_i16x8 y = __builtin_convertvector(
      __builtin_shufflevector((g_i8x16)b, (g_i8x16)b, 8, 9, 10, 11, 12, 13, 14, 15), g_i16x8);
  return (v128_t)((g_u16x8)x * (g_u16x8)y);
}
WI v128_t wasm_i32x4_extadd_pairwise_i16x8(v128_t a) {
  g_i16x8 t = (g_i16x8)a;
  v128_t even = __builtin_convertvector(__builtin_shufflevector(t, t, 0, 2, 4, 6), v128_t);
  v128_t odd = __builtin_convertvector(__builtin_shufflevector(t, t, 1, 3, 5, 7), v128_t);
  return wasm_i32x4_add(even, odd);
}
WI v128_t wasm_i32x4_dot_i16x8(v128_t a, v128_t b) {
#if defined(__SSE2__)
  return (v128_t)_mm_madd_epi16((__m128i)a, (__m128i)b);
#else
  g_i16x8 x = (g_i16x8)a, y = (g_i16x8)b;
  v128_t r;
  for (int k = 0; k < 4; k++) {
    r[k] = (int32_t)((uint32_t)(x[2 * k] * y[2 * k]) + (uint32_t)(x[2 * k + 1] * y[2 * k + 1]));
  }
  return r;
#endif
}

// Pair sums of a[i] * b[i] (b in [0, 127]): exact, no pair reaches 2^15.
WI v128_t wasm_i16x8_relaxed_dot_i8x16_i7x16(v128_t a, v128_t b) {
#if defined(__SSSE3__)
  return (v128_t)_mm_maddubs_epi16((__m128i)b, (__m128i)a);
#else
  return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(a, b), wasm_i16x8_extmul_high_i8x16(a, b));
#endif
}
// c + sums of four a[i] * b[i] per lane (b in [0, 127]).
WI v128_t wasm_i32x4_relaxed_dot_i8x16_i7x16_add(v128_t a, v128_t b, v128_t c) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return (v128_t)_mm_dpbusd_epi32((__m128i)c, (__m128i)b, (__m128i)a);
#elif defined(__AVXVNNI__)
  return (v128_t)_mm_dpbusd_avx_epi32((__m128i)c, (__m128i)b, (__m128i)a);
#elif defined(__SSSE3__)
  __m128i p = _mm_maddubs_epi16((__m128i)b, (__m128i)a);
  return wasm_i32x4_add(c, (v128_t)_mm_madd_epi16(p, _mm_set1_epi16(1)));
#else
  v128_t lo = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_low_i8x16(a, b));
  v128_t hi = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_high_i8x16(a, b));
  return wasm_i32x4_add(c, wasm_i32x4_add(wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6),
                                          wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7)));
#endif
}

WI v128_t wasm_f64x2_add(v128_t a, v128_t b) { return (v128_t)((g_f64x2)a + (g_f64x2)b); }
WI v128_t wasm_f64x2_sub(v128_t a, v128_t b) { return (v128_t)((g_f64x2)a - (g_f64x2)b); }
WI v128_t wasm_f64x2_mul(v128_t a, v128_t b) { return (v128_t)((g_f64x2)a * (g_f64x2)b); }
WI v128_t wasm_f32x4_mul(v128_t a, v128_t b) { return (v128_t)((g_f32x4)a * (g_f32x4)b); }
WI v128_t wasm_f64x2_convert_low_i32x4(v128_t a) {
  return (v128_t)__builtin_convertvector(__builtin_shufflevector(a, a, 0, 1), g_f64x2);
}
WI v128_t wasm_f64x2_promote_low_f32x4(v128_t a) {
  g_f32x4 t = (g_f32x4)a;
  return (v128_t)__builtin_convertvector(__builtin_shufflevector(t, t, 0, 1), g_f64x2);
}
WI v128_t wasm_f32x4_convert_i32x4(v128_t a) { return (v128_t)__builtin_convertvector(a, g_f32x4); }

#endif
