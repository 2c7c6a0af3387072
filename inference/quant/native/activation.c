// SwiGLU's gate, silu(g) * u, in the native build only (build.ts). The TypeScript loop
// (../../primitives.ts) calls Math.exp once per value, ~16 ns each: a tenth of a 128-token
// prefill on the 1.1B model. Here exp runs eight lanes at a time (exp8.h). Its error is an
// ulp or two of f64, so the f32 result equals the TypeScript one except where that f64 lies
// within a couple of ulps of an f32 rounding boundary (about one value in 10^7;
// activation-native.test.ts).
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

typedef float f8 __attribute__((vector_size(32)));
#include "exp8.h"

// silu(g) * u for eight values, in f64. Infinite and NaN gates take JavaScript's values
// (the clamp above would give -Infinity for -Infinity, where Math.exp gives NaN).
static inline __attribute__((always_inline)) f8 silu_mul8(f8 g, f8 u) {
  d8 x = __builtin_convertvector(g, d8), v = __builtin_convertvector(u, d8);
  d8 y = x / (splat(1.0) + exp8(-x)) * v;
  l8 odd = ~(__builtin_elementwise_abs(x) <= splat(1.7976931348623157e308));
  for (int j = 0; j < 8 && __builtin_reduce_or(odd); j++) {
    if (odd[j]) y[j] = x[j] > 0 ? x[j] * v[j] : __builtin_nan("");
  }
  return __builtin_convertvector(y, f8);
}

// gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i], in f64, rounded to f32.
EXPORT void silu_mul_f32(float* gate, const float* up, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    f8 g, u;
    __builtin_memcpy(&g, gate + i, 32);
    __builtin_memcpy(&u, up + i, 32);
    f8 out = silu_mul8(g, u);
    __builtin_memcpy(gate + i, &out, 32);
  }
  if (i < n) {
    // The tail through the same code, padded with zeros.
    f8 g = {0}, u = {0};
    for (int j = 0; i + j < n; j++) g[j] = gate[i + j], u[j] = up[i + j];
    f8 out = silu_mul8(g, u);
    for (int j = 0; i + j < n; j++) gate[i + j] = out[j];
  }
}
