// Attention of query rows over an f16 KV cache, in the native build only (build.ts), as
// attendRow (../../attention.ts) computes it in TypeScript for each row. The scores and the
// value sums are the TypeScript loops' bit for bit: products of f32 and f16 values are exact
// in f64, the score of a position is eight f64 partial sums (element i adds to sum i mod 8, in
// order) added in a fixed tree, and each output value adds its positions' products in order,
// rounded to f32 after each add. The softmax between them follows the TypeScript one step for
// step, with exp8.h's exp for Math.exp: the two differ by an ulp or two of f64 at most, which
// the f32 and f16 roundings of each weight absorb but for a value within those ulps of a
// rounding boundary (none in attention-native.test.ts). Rows of one cache go in blocks that
// read each key and value row once for all of them; every score and sum is still its row's.
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

typedef _Float16 h8 __attribute__((vector_size(16)));
typedef _Float16 h16 __attribute__((vector_size(32)));
typedef float f8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
#include "exp8.h"

static inline __attribute__((always_inline)) d8 load_h8(const _Float16* p) {
  h8 v;
  __builtin_memcpy(&v, p, 16);
  return __builtin_convertvector(v, d8);
}

static inline __attribute__((always_inline)) f8 load_h8_f(const _Float16* p) {
  h8 v;
  __builtin_memcpy(&v, p, 16);
  return __builtin_convertvector(v, f8);
}

static inline __attribute__((always_inline)) f32x16 load_h16(const _Float16* p) {
  h16 v;
  __builtin_memcpy(&v, p, 32);
  return __builtin_convertvector(v, f32x16);
}

static inline __attribute__((always_inline)) d8 load_f8(const float* p) {
  f8 v;
  __builtin_memcpy(&v, p, 32);
  return __builtin_convertvector(v, d8);
}

static inline __attribute__((always_inline)) double sum8(d8 a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static inline __attribute__((always_inline)) d8 load_d8(const double* p) {
  d8 v;
  __builtin_memcpy(&v, p, 64);
  return v;
}

// o[j] = scale * (qh . row j) for the `len` f64 key rows at kd, four rows at a time (four
// independent chains). Each product joins its sum in one fused multiply-add, which rounds as
// the TypeScript loop's add does: a product of an f32 and an f16 value is exact in f64.
static inline __attribute__((always_inline)) void scores_run(const float* qh, const double* kd,
                                                             int headDim, int len, double scale,
                                                             double* o) {
  int full = headDim & ~7, j = 0;
  for (; j + 4 <= len; j += 4) {
    const double* k0 = kd + (long)j * headDim;
    const double *k1 = k0 + headDim, *k2 = k1 + headDim, *k3 = k2 + headDim;
    d8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int i = 0; i < full; i += 8) {
      d8 qi = load_f8(qh + i);
      a0 = __builtin_elementwise_fma(qi, load_d8(k0 + i), a0);
      a1 = __builtin_elementwise_fma(qi, load_d8(k1 + i), a1);
      a2 = __builtin_elementwise_fma(qi, load_d8(k2 + i), a2);
      a3 = __builtin_elementwise_fma(qi, load_d8(k3 + i), a3);
    }
    for (int i = full; i < headDim; i++) {
      double qi = qh[i];
      a0[i & 7] = __builtin_fma(qi, k0[i], a0[i & 7]);
      a1[i & 7] = __builtin_fma(qi, k1[i], a1[i & 7]);
      a2[i & 7] = __builtin_fma(qi, k2[i], a2[i & 7]);
      a3[i & 7] = __builtin_fma(qi, k3[i], a3[i & 7]);
    }
    o[j] = sum8(a0) * scale;
    o[j + 1] = sum8(a1) * scale;
    o[j + 2] = sum8(a2) * scale;
    o[j + 3] = sum8(a3) * scale;
  }
  for (; j < len; j++) {
    const double* k = kd + (long)j * headDim;
    d8 acc = {0};
    for (int i = 0; i < full; i += 8) {
      acc = __builtin_elementwise_fma(load_f8(qh + i), load_d8(k + i), acc);
    }
    for (int i = full; i < headDim; i++) {
      acc[i & 7] = __builtin_fma((double)qh[i], k[i], acc[i & 7]);
    }
    o[j] = sum8(acc) * scale;
  }
}

// Rows of one step that read the same caches (a prefill's, consecutive positions mostly),
// taken together so that each key and value row is brought in once for all of them: from the
// second row of a long prompt on, a row's keys and values no longer fit the L2 cache, and every
// row read them all again. Each score and each output is computed as for a row alone.
#define BLOCK_MAX 8

struct block {
  int n;
  int lo, hi; // the positions any of its rows reads
  int h0, h1; // the query heads it computes: all, or a share of a lone row's
  const float* q[BLOCK_MAX];
  float* att[BLOCK_MAX];
  double* s[BLOCK_MAX]; // a row's scores, then its weights: heads runs of np (its positions)
  int start[BLOCK_MAX], pos[BLOCK_MAX];
};

// Row r's positions within [a, z]: false where it reads none of them.
static inline __attribute__((always_inline)) int clamp_row(const struct block* b, int r, int a,
                                                          int z, int* from, int* to) {
  *from = a > b->start[r] ? a : b->start[r];
  *to = z < b->pos[r] ? z : b->pos[r];
  return *from <= *to;
}

// The block's query heads that read kv head kvh: [heads_from, heads_to).
static inline __attribute__((always_inline)) int heads_from(const struct block* b, int kvh,
                                                           int group) {
  return kvh * group > b->h0 ? kvh * group : b->h0;
}
static inline __attribute__((always_inline)) int heads_to(const struct block* b, int kvh,
                                                         int group) {
  return (kvh + 1) * group < b->h1 ? (kvh + 1) * group : b->h1;
}

// Key values converted to f64 at a time: 32 KiB, which stay in L1 while every query head of
// their kv head, in every row of the block, reads them.
#define KEY_RUN_VALUES 4096

// s[r][h * np + p - start] = scale * (q_h . k_p) for each row r of the block, heads [0, heads)
// and its positions [start, pos], where key row p lies at (ring > 0 ? p % ring : p) * kDim and
// query head h reads kv head h / (heads / kvHeads). Key rows are converted to f64 a run at a
// time, once for all the query heads and rows that read them (four heads under the 1.1B's
// grouped-query attention) where each head converted them again: 16 heads of 128 over 128
// positions, 18.6 µs against 31.4.
static void block_scores_f16(const struct block* b, const _Float16* keys, int heads, int kvHeads,
                             int headDim, int ring, double scale) {
  int group = heads / kvHeads, kDim = kvHeads * headDim;
  int full = headDim & ~7, run = headDim >= KEY_RUN_VALUES ? 1 : KEY_RUN_VALUES / headDim;
  double kd[run * headDim];
  for (int kvh = b->h0 / group; kvh * group < b->h1; kvh++) {
    const _Float16* kh = keys + (long)kvh * headDim;
    for (int p0 = b->lo; p0 <= b->hi; p0 += run) {
      int len = b->hi - p0 + 1 < run ? b->hi - p0 + 1 : run, from, to, read = 0;
      for (int r = 0; r < b->n && !read; r++) read = clamp_row(b, r, p0, p0 + len - 1, &from, &to);
      if (!read) continue; // a gap between sliding windows
      for (int j = 0; j < len; j++) {
        const _Float16* k = kh + (long)(ring > 0 ? (p0 + j) % ring : p0 + j) * kDim;
        double* d = kd + (long)j * headDim;
        for (int i = 0; i < full; i += 8) {
          d8 v = load_h8(k + i);
          __builtin_memcpy(d + i, &v, 64);
        }
        for (int i = full; i < headDim; i++) d[i] = (double)k[i];
      }
      for (int r = 0; r < b->n; r++) {
        if (!clamp_row(b, r, p0, p0 + len - 1, &from, &to)) continue;
        int np = b->pos[r] - b->start[r] + 1;
        for (int h = heads_from(b, kvh, group); h < heads_to(b, kvh, group); h++) {
          scores_run(b->q[r] + (long)h * headDim, kd + (long)(from - p0) * headDim, headDim,
                     to - from + 1, scale, b->s[r] + (long)h * np + from - b->start[r]);
        }
      }
    }
  }
}

// o[i] = the sum over p in [from, to] of w[p - from] * value row p's element i, added in
// position order and rounded to f32 after each add. The weights are f16 values (softmax_weights
// rounds them), so each product of a weight and an f16 value is exact in f32, and an f32 add
// rounds as the TypeScript loop's f64 add then f32 store: the sums run in f32, sixteen outputs
// a vector, each product joining its sum in a fused multiply-add (the product being exact, the
// same rounding).
static void values_span(const double* w, const _Float16* vh, int vDim, int ring, int valueDim,
                        int from, int to, float* o) {
  int full = valueDim & ~63, full16 = valueDim & ~15, full8 = valueDim & ~7;
  // 64 outputs at a time stay in registers over every position: four independent chains.
  for (int i = 0; i < full; i += 64) {
    f32x16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int p = from; p <= to; p++) {
      const _Float16* v = vh + (long)(ring > 0 ? p % ring : p) * vDim + i;
      float x = (float)w[p - from];
      f32x16 xs = {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
      a0 = __builtin_elementwise_fma(xs, load_h16(v), a0);
      a1 = __builtin_elementwise_fma(xs, load_h16(v + 16), a1);
      a2 = __builtin_elementwise_fma(xs, load_h16(v + 32), a2);
      a3 = __builtin_elementwise_fma(xs, load_h16(v + 48), a3);
    }
    __builtin_memcpy(o + i, &a0, 64);
    __builtin_memcpy(o + i + 16, &a1, 64);
    __builtin_memcpy(o + i + 32, &a2, 64);
    __builtin_memcpy(o + i + 48, &a3, 64);
  }
  for (int i = full; i < full16; i += 16) {
    f32x16 a = {0};
    for (int p = from; p <= to; p++) {
      a += (float)w[p - from] * load_h16(vh + (long)(ring > 0 ? p % ring : p) * vDim + i);
    }
    __builtin_memcpy(o + i, &a, 64);
  }
  // Small heads (stories260K's eight values): eight chains in one register, not one by one.
  for (int i = full16; i < full8; i += 8) {
    f8 a = {0};
    for (int p = from; p <= to; p++) {
      a += (float)w[p - from] * load_h8_f(vh + (long)(ring > 0 ? p % ring : p) * vDim + i);
    }
    __builtin_memcpy(o + i, &a, 32);
  }
  for (int i = full8; i < valueDim; i++) {
    float a = 0;
    for (int p = from; p <= to; p++) {
      a += (float)w[p - from] * (float)vh[(long)(ring > 0 ? p % ring : p) * vDim + i];
    }
    o[i] = a;
  }
}

// o[i] += the sum over the n positions of w[j] * f32 value row j (vf, valueDim apart), as
// values_span adds them (the values converted from f16 beforehand, which is exact): eight
// independent sums a vector where a head has 128 values, so that the sums' latency hides.
static void values_span_f32(const double* w, const float* vf, int valueDim, int n, float* o) {
  int i = 0;
  for (; i + 128 <= valueDim; i += 128) {
    f32x16 a[8];
    for (int k = 0; k < 8; k++) __builtin_memcpy(&a[k], o + i + 16 * k, 64);
    for (int j = 0; j < n; j++) {
      const float* v = vf + (long)j * valueDim + i;
      float x = (float)w[j];
      f32x16 xs = {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}, vk;
      for (int k = 0; k < 8; k++) {
        __builtin_memcpy(&vk, v + 16 * k, 64);
        a[k] = __builtin_elementwise_fma(xs, vk, a[k]);
      }
    }
    for (int k = 0; k < 8; k++) __builtin_memcpy(o + i + 16 * k, &a[k], 64);
  }
  for (; i + 16 <= valueDim; i += 16) {
    f32x16 a, vk;
    __builtin_memcpy(&a, o + i, 64);
    for (int j = 0; j < n; j++) {
      float x = (float)w[j];
      f32x16 xs = {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
      __builtin_memcpy(&vk, vf + (long)j * valueDim + i, 64);
      a = __builtin_elementwise_fma(xs, vk, a);
    }
    __builtin_memcpy(o + i, &a, 64);
  }
  for (; i + 8 <= valueDim; i += 8) {
    f8 a, vk;
    __builtin_memcpy(&a, o + i, 32);
    for (int j = 0; j < n; j++) {
      float x = (float)w[j];
      __builtin_memcpy(&vk, vf + (long)j * valueDim + i, 32);
      a = __builtin_elementwise_fma((f8){x, x, x, x, x, x, x, x}, vk, a);
    }
    __builtin_memcpy(o + i, &a, 32);
  }
  for (; i < valueDim; i++) {
    float a = o[i];
    for (int j = 0; j < n; j++) a = __builtin_fmaf((float)w[j], vf[(long)j * valueDim + i], a);
    o[i] = a;
  }
}

// Value values converted to f32 at a time for a block: 16 KiB, which stay in L1 while every
// head and row of the block applies them.
#define VALUE_RUN_VALUES 4096

// att[r][h * valueDim + i] = the sum over p in [start, pos] of s[r][h * np + p - start] *
// value row p's element i, added in position order (values_span), for each row r of the block
// and head h, value row p at (ring > 0 ? p % ring : p) * vDim. A lone row (a decode step's)
// reads its values as they are, its sums never leaving registers; a block's rows take them in
// runs converted to f32 once for all of them, their sums carried from run to run.
static void block_values_f16(const struct block* b, const _Float16* values, int heads,
                             int kvHeads, int valueDim, int ring) {
  int group = heads / kvHeads, vDim = kvHeads * valueDim;
  if (b->n == 1) {
    int np = b->pos[0] - b->start[0] + 1;
    for (int h = b->h0; h < b->h1; h++) {
      values_span(b->s[0] + (long)h * np, values + (long)(h / group) * valueDim, vDim, ring,
                  valueDim, b->start[0], b->pos[0], b->att[0] + (long)h * valueDim);
    }
    return;
  }
  for (int r = 0; r < b->n; r++) {
    for (long i = (long)b->h0 * valueDim; i < (long)b->h1 * valueDim; i++) b->att[r][i] = 0;
  }
  int run = valueDim >= VALUE_RUN_VALUES ? 1 : VALUE_RUN_VALUES / valueDim;
  float vf[run * valueDim];
  for (int kvh = b->h0 / group; kvh * group < b->h1; kvh++) {
    const _Float16* vh = values + (long)kvh * valueDim;
    for (int p0 = b->lo; p0 <= b->hi; p0 += run) {
      int z = b->hi - p0 + 1 < run ? b->hi : p0 + run - 1, from, to, read = 0;
      for (int r = 0; r < b->n && !read; r++) read = clamp_row(b, r, p0, z, &from, &to);
      if (!read) continue; // a gap between sliding windows
      for (int p = p0; p <= z; p++) {
        const _Float16* v = vh + (long)(ring > 0 ? p % ring : p) * vDim;
        float* d = vf + (long)(p - p0) * valueDim;
        for (int i = 0; i < valueDim; i++) d[i] = (float)v[i];
      }
      for (int r = 0; r < b->n; r++) {
        if (!clamp_row(b, r, p0, z, &from, &to)) continue;
        int np = b->pos[r] - b->start[r] + 1;
        for (int h = heads_from(b, kvh, group); h < heads_to(b, kvh, group); h++) {
          values_span_f32(b->s[r] + (long)h * np + from - b->start[r],
                          vf + (long)(from - p0) * valueDim, valueDim, to - from + 1,
                          b->att[r] + (long)h * valueDim);
        }
      }
    }
  }
}

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__F16C__)
#include <immintrin.h>
// Eight values rounded to the nearest f16 (ties to even), as (_Float16)x rounds one, which
// compiler-rt does in soft float (a sixth of a long MoE prefill's time went there). The f32
// step rounds to odd (toward zero, its last bit set where that was inexact), which keeps
// enough bits for the f16 rounding after it to give the direct rounding's result.
static inline __attribute__((always_inline)) d8 round_f16_8(d8 x) {
  __m512d v = (__m512d)x;
  __m256 t = _mm512_cvt_roundpd_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  __mmask8 inexact = _mm512_cmp_pd_mask(_mm512_cvtps_pd(t), v, _CMP_NEQ_UQ);
  __m256i odd = _mm256_mask_or_epi32((__m256i)t, inexact, (__m256i)t, _mm256_set1_epi32(1));
  __m128i h = _mm256_cvtps_ph((__m256)odd, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return (d8)_mm512_cvtps_pd(_mm256_cvtph_ps(h));
}
#define ROUND_F16_8 1
#endif

// x[i] / sum rounded to f16, in place, for i in [0, n).
static void divide_round_f16(double* x, int n, double sum) {
  int i = 0;
#ifdef ROUND_F16_8
  for (; i + 8 <= n; i += 8) {
    d8 v;
    __builtin_memcpy(&v, x + i, 64);
    v = round_f16_8(v / splat(sum));
    __builtin_memcpy(x + i, &v, 64);
  }
#endif
  for (; i < n; i++) x[i] = (double)(_Float16)(x[i] / sum);
}

// The weights' f16 rounding on its own, for attention-native.test.ts.
EXPORT void grove_round_f16(double* x, int n) { divide_round_f16(x, n, 1.0); }

// Each head's scores in s[h * np + i] become its softmax weights: scores rounded to f32 as
// attendRow's Float32Array holds them, less their max (and the head's sink logit, gpt-oss),
// exponentiated; their f32 values over the f64 sum of the unrounded ones, rounded to f16 as
// the f16 cache takes them.
static void softmax_weights(double* s, int heads, int np, const float* sinks) {
  for (int h = 0; h < heads; h++) {
    double* x = s + (long)h * np;
    double max = -__builtin_inf();
    for (int i = 0; i < np; i++) {
      if (x[i] > max) max = x[i];
    }
    double sink = sinks ? (double)sinks[h] : 0;
    if (sinks && sink > max) max = sink;
    double sum = sinks ? exp8(splat(sink - max))[0] : 0;
    int i = 0;
    // Whole vectors apart from the tail, so that exp8 runs on vectors (with the tail's lane
    // conditions in the same loop, clang evaluated its polynomial one lane at a time).
    for (; i + 8 <= np; i += 8) {
      d8 v;
      __builtin_memcpy(&v, x + i, 64);
      v = __builtin_convertvector(__builtin_convertvector(v, f8), d8) - splat(max);
      d8 e = exp8(v);
      for (int j = 0; j < 8; j++) sum += e[j];
      e = __builtin_convertvector(__builtin_convertvector(e, f8), d8);
      __builtin_memcpy(x + i, &e, 64);
    }
    for (; i < np; i += 8) {
      d8 v = splat(0);
      for (int j = 0; j < 8 && i + j < np; j++) v[j] = (double)(float)x[i + j] - max;
      d8 e = exp8(v);
      for (int j = 0; j < 8 && i + j < np; j++) {
        sum += e[j];
        x[i + j] = (float)e[j];
      }
    }
    divide_round_f16(x, np, sum);
  }
}

// q's values rounded to f16 in place (round to nearest even, as Float16Array's conversion
// rounds): llama.cpp's f16 cache takes Q·K in f16 (ggml mul_mat converts Q to K's type), and
// attentionBlock leaves that to this kernel where it runs, where TypeScript took ~3 ns a value.
static void round_q_f16(float* q, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    f8 v;
    __builtin_memcpy(&v, q + i, 32);
    v = __builtin_convertvector(__builtin_convertvector(v, h8), f8);
    __builtin_memcpy(q + i, &v, 32);
  }
  for (; i < n; i++) q[i] = (float)(_Float16)q[i];
}

// Many query rows at once, for pool.c's two threads (each takes a range of rows): the
// kernel signature of grove_run, its pointers carrying attn_rows' tables (attention-native.ts
// lays them out): `ctx` the shared header, `rows_ptrs` each row's key and value cache,
// `rows_ints` each row's start, pos, ring, index (where its query and output lie) and query
// heads [h0, h1) (all of them, or a share where a lone row is split between the threads),
// `scratch` two threads' scratch, `att` the output. Consecutive rows on the same caches and
// heads go as one block (as many as a thread's scratch holds scores for, BLOCK_MAX at most).
// Each row's query heads are rounded to f16 values first, in place (round_q_f16).
struct attn_header {
  float* q; // each row rounded to f16 values in place
  const float* sinks;
  double scale;
  int32_t heads, kv_heads, head_dim, value_dim, q_stride, att_stride, scratch_per_thread,
    scratch_per_row;
};

// Ints a row takes in rows_ints.
#define ROW_INTS 6

EXPORT void attn_rows_f16(const uint8_t* ctx, int rows, int cols, int n, int r0, int r1,
                          const int8_t* rows_ptrs, const double* scratch, const int32_t* rows_ints,
                          float* att) {
  (void)rows, (void)cols, (void)n;
  const struct attn_header* h = (const struct attn_header*)ctx;
  const _Float16* const* caches = (const _Float16* const*)rows_ptrs;
  // The thread that starts at row 0 takes the first scratch, the other the second.
  double* mine = (double*)scratch + (r0 == 0 ? 0 : h->scratch_per_thread);
  int most = h->scratch_per_thread / h->scratch_per_row;
  if (most > BLOCK_MAX) most = BLOCK_MAX;
  for (int r = r0; r < r1;) {
    const _Float16 *keys = caches[2 * r], *values = caches[2 * r + 1];
    const int32_t* first = rows_ints + ROW_INTS * (long)r;
    struct block b = {.n = 0, .lo = first[0], .hi = first[1], .h0 = first[4], .h1 = first[5]};
    for (; r < r1 && b.n < most; r++) {
      const int32_t* at = rows_ints + ROW_INTS * (long)r;
      if (caches[2 * r] != keys || caches[2 * r + 1] != values || at[2] != first[2]) break;
      if (at[4] != b.h0 || at[5] != b.h1) break;
      float* q = h->q + (long)at[3] * h->q_stride;
      round_q_f16(q + (long)b.h0 * h->head_dim, (b.h1 - b.h0) * h->head_dim);
      b.q[b.n] = q;
      b.att[b.n] = att + (long)at[3] * h->att_stride;
      b.s[b.n] = mine + (long)b.n * h->scratch_per_row;
      b.start[b.n] = at[0];
      b.pos[b.n] = at[1];
      if (at[0] < b.lo) b.lo = at[0];
      if (at[1] > b.hi) b.hi = at[1];
      b.n++;
    }
    block_scores_f16(&b, keys, h->heads, h->kv_heads, h->head_dim, first[2], h->scale);
    for (int j = 0; j < b.n; j++) {
      int np = b.pos[j] - b.start[j] + 1;
      softmax_weights(b.s[j] + (long)b.h0 * np, b.h1 - b.h0, np, h->sinks ? h->sinks + b.h0 : 0);
    }
    block_values_f16(&b, values, h->heads, h->kv_heads, h->value_dim, first[2]);
  }
}
