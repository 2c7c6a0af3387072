// Attention over an f16 KV cache, in the native build only (build.ts): the two loops that
// cost in attendRow (../../attention.ts), query-key scores and the weighted sum of values.
// The softmax between them stays in TypeScript. Each result is the TypeScript loop's bit for
// bit: products of f32 and f16 values are exact in f64, the score of a position is eight f64
// partial sums (element i adds to sum i mod 8, in order) added in a fixed tree, and each
// output value adds its positions' products in order, rounded to f32 after each add.
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

typedef _Float16 h8 __attribute__((vector_size(16)));
typedef float f8 __attribute__((vector_size(32)));
typedef double d8 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) d8 load_h8(const _Float16* p) {
  h8 v;
  __builtin_memcpy(&v, p, 16);
  return __builtin_convertvector(v, d8);
}

static inline __attribute__((always_inline)) d8 load_f8(const float* p) {
  f8 v;
  __builtin_memcpy(&v, p, 32);
  return __builtin_convertvector(v, d8);
}

static inline __attribute__((always_inline)) double sum8(d8 a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// out[h * np + p - start] = scale * (q_h . k_p) for heads [0, heads) and positions
// [start, pos] (np of them), where key row p lies at (ring > 0 ? p % ring : p) * kDim and query
// head h reads kv head h / (heads / kvHeads).
EXPORT void attn_scores_f16(const float* q, const _Float16* keys, int heads, int kvHeads,
                            int headDim, int start, int pos, int ring, double scale,
                            double* out) {
  int group = heads / kvHeads, kDim = kvHeads * headDim, np = pos - start + 1;
  int full = headDim & ~7;
  for (int h = 0; h < heads; h++) {
    const float* qh = q + (long)h * headDim;
    const _Float16* kh = keys + (long)(h / group) * headDim;
    double* o = out + (long)h * np;
    int p = start;
    // Four positions at a time: four independent chains of adds instead of one.
    for (; p + 3 <= pos; p += 4) {
      const _Float16* k0 = kh + (long)(ring > 0 ? p % ring : p) * kDim;
      const _Float16* k1 = kh + (long)(ring > 0 ? (p + 1) % ring : p + 1) * kDim;
      const _Float16* k2 = kh + (long)(ring > 0 ? (p + 2) % ring : p + 2) * kDim;
      const _Float16* k3 = kh + (long)(ring > 0 ? (p + 3) % ring : p + 3) * kDim;
      d8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
      for (int i = 0; i < full; i += 8) {
        d8 qi = load_f8(qh + i);
        a0 += qi * load_h8(k0 + i);
        a1 += qi * load_h8(k1 + i);
        a2 += qi * load_h8(k2 + i);
        a3 += qi * load_h8(k3 + i);
      }
      for (int i = full; i < headDim; i++) {
        double qi = qh[i];
        a0[i & 7] += qi * (double)k0[i];
        a1[i & 7] += qi * (double)k1[i];
        a2[i & 7] += qi * (double)k2[i];
        a3[i & 7] += qi * (double)k3[i];
      }
      o[p - start] = sum8(a0) * scale;
      o[p + 1 - start] = sum8(a1) * scale;
      o[p + 2 - start] = sum8(a2) * scale;
      o[p + 3 - start] = sum8(a3) * scale;
    }
    for (; p <= pos; p++) {
      const _Float16* k = kh + (long)(ring > 0 ? p % ring : p) * kDim;
      d8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int i = 0; i < full; i += 8) acc += load_f8(qh + i) * load_h8(k + i);
      for (int i = full; i < headDim; i++) acc[i & 7] += (double)qh[i] * (double)k[i];
      o[p - start] = sum8(acc) * scale;
    }
  }
}

// att[h * valueDim + i] = sum over p in [start, pos] of weights[h * np + p - start] *
// value row p's element i, added in position order and rounded to f32 after each add.
EXPORT void attn_values_f16(const double* weights, const _Float16* values, int heads,
                            int kvHeads, int valueDim, int start, int pos, int ring,
                            float* att) {
  int group = heads / kvHeads, vDim = kvHeads * valueDim, np = pos - start + 1;
  int full = valueDim & ~63;
  for (int h = 0; h < heads; h++) {
    const double* w = weights + (long)h * np;
    const _Float16* vh = values + (long)(h / group) * valueDim;
    float* o = att + (long)h * valueDim;
    // 64 outputs at a time stay in registers over every position: eight independent chains.
    for (int i = 0; i < full; i += 64) {
      d8 a[8] = {{0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}};
      for (int p = start; p <= pos; p++) {
        const _Float16* v = vh + (long)(ring > 0 ? p % ring : p) * vDim + i;
        double x = w[p - start];
#pragma clang loop unroll(full)
        for (int j = 0; j < 8; j++) {
          a[j] = __builtin_convertvector(__builtin_convertvector(a[j] + x * load_h8(v + 8 * j), f8), d8);
        }
      }
      for (int j = 0; j < 64; j++) o[i + j] = (float)a[j >> 3][j & 7];
    }
    int full8 = valueDim & ~7;
    for (int i = full; i < full8; i += 8) {
      d8 a = {0};
      for (int p = start; p <= pos; p++) {
        const _Float16* v = vh + (long)(ring > 0 ? p % ring : p) * vDim + i;
        a = __builtin_convertvector(__builtin_convertvector(a + w[p - start] * load_h8(v), f8), d8);
      }
      for (int j = 0; j < 8; j++) o[i + j] = (float)a[j];
    }
    for (int i = full8; i < valueDim; i++) {
      float a = 0;
      for (int p = start; p <= pos; p++) {
        const _Float16* v = vh + (long)(ring > 0 ? p % ring : p) * vDim + i;
        a = (float)((double)a + w[p - start] * (double)*v);
      }
      o[i] = a;
    }
  }
}
