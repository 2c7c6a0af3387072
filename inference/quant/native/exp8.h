// e^x for eight f64 lanes, shared by activation.c and attention.c: k = round(x / ln 2),
// r = x - k ln 2 in two parts (Cody-Waite), e^r by its Taylor series to r^13 (|r| <= 0.35,
// truncation below 2^-52 of the result), times 2^k. An ulp or two from Math.exp at most;
// its callers round the result to f32 or f16 before it counts.
#ifndef GROVE_EXP8_H
#define GROVE_EXP8_H

typedef double d8 __attribute__((vector_size(64)));
typedef int64_t l8 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) d8 splat(double x) { return (d8){x, x, x, x, x, x, x, x}; }

static inline __attribute__((always_inline)) d8 exp8(d8 x) {
  // Below -745 e^x rounds to 0 and above 709.78 it overflows: clamp so 2^k stays a normal
  // double (results then match 0 and Infinity closely enough that x / (1 + e^x) rounds alike).
  x = __builtin_elementwise_max(__builtin_elementwise_min(x, splat(709.0)), splat(-708.0));
  d8 k = __builtin_elementwise_roundeven(x * splat(1.4426950408889634));
  d8 r = (x - k * splat(6.93147180369123816490e-01)) - k * splat(1.90821492927058770002e-10);
  d8 p = splat(1.0 / 6227020800.0);
  p = p * r + splat(1.0 / 479001600.0);
  p = p * r + splat(1.0 / 39916800.0);
  p = p * r + splat(1.0 / 3628800.0);
  p = p * r + splat(1.0 / 362880.0);
  p = p * r + splat(1.0 / 40320.0);
  p = p * r + splat(1.0 / 5040.0);
  p = p * r + splat(1.0 / 720.0);
  p = p * r + splat(1.0 / 120.0);
  p = p * r + splat(1.0 / 24.0);
  p = p * r + splat(1.0 / 6.0);
  p = p * r + splat(0.5);
  p = p * r + splat(1.0);
  p = p * r + splat(1.0);
  l8 bits = (__builtin_convertvector(k, l8) + 1023) << 52;
  return p * (d8)bits;
}

#endif
