// F32 weights times several f32 vectors, for prefill on F32 models (stories260K): the product
// matVecBatchF32Activations (../matvec-f32-act.ts) computes in TypeScript, equal to it bit for
// bit. Each output is the f64 sum of its products in column order, one rounding per add: a
// product of two f32 values is exact in f64, so the fused multiply-add below rounds where the
// TypeScript `a += w * x` does. The vectors go across a register's lanes (eight to a group,
// laid out by matMulF32Native in matvec-native.ts as group, column, lane), never the columns,
// so the order of each sum is the TypeScript one; four rows by four groups share each weight
// and input load.
//
// pool.c's kernel signature: `w` the rows' f32 values, `n` the vectors, rows [r0, r1) of the
// `rows`, `xs` the laid-out inputs (f64), out[v * rows + r]. yq and ys are unused.
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define LANES 8

typedef double d8 __attribute__((ext_vector_type(LANES)));

static inline d8 load8(const double* p) {
  d8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline float weight(const uint8_t* w, long i) {
  float f;
  memcpy(&f, w + 4 * i, sizeof f); // tensor data need not be 4-byte aligned in a buffer
  return f;
}

// R rows from `row` by G groups from `group`: R and G are constants where it is called, so
// the accumulators stay in registers.
static inline __attribute__((always_inline)) void tile(const uint8_t* w, int rows, int cols,
                                                       int n, int row, int group, int R, int G,
                                                       const double* xs, float* out) {
  d8 acc[4][4] = {{0}};
  const double* x = xs + (long)group * cols * LANES;
  for (int j = 0; j < cols; j++) {
    d8 in[4];
    for (int g = 0; g < G; g++) in[g] = load8(x + ((long)g * cols + j) * LANES);
    for (int r = 0; r < R; r++) {
      d8 wr = (double)weight(w, (long)(row + r) * cols + j);
      for (int g = 0; g < G; g++) acc[r][g] = __builtin_elementwise_fma(wr, in[g], acc[r][g]);
    }
  }
  for (int g = 0; g < G; g++) {
    for (int l = 0; l < LANES; l++) {
      int v = (group + g) * LANES + l;
      if (v >= n) return;
      for (int r = 0; r < R; r++) out[(long)v * rows + row + r] = (float)acc[r][g][l];
    }
  }
}

EXPORT void matmul_f32(const uint8_t* w, int rows, int cols, int n, int r0, int r1,
                       const int8_t* yq, const double* xs, const int32_t* ys, float* out) {
  (void)yq, (void)ys;
  int groups = (n + LANES - 1) / LANES, r = r0;
  for (; r + 4 <= r1; r += 4) {
    int g = 0;
    for (; g + 4 <= groups; g += 4) tile(w, rows, cols, n, r, g, 4, 4, xs, out);
    for (; g < groups; g++) tile(w, rows, cols, n, r, g, 4, 1, xs, out);
  }
  for (; r < r1; r++) {
    int g = 0;
    for (; g + 4 <= groups; g += 4) tile(w, rows, cols, n, r, g, 1, 4, xs, out);
    for (; g < groups; g++) tile(w, rows, cols, n, r, g, 1, 1, xs, out);
  }
}
