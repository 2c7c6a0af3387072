// Q4_K and Q5_K for groups of eight vectors (and sixteen where the CPU has AVX-512 VNNI), in
// the native build only (included by ../wasm/kernels.c after the Q4_0 ones, whose helpers it
// uses): the prefill and batched-decode kernels, as matvec_q4_0_x8 / _x16 are for Q4_0.
// Levels are interleaved [g][chunk][lanes] (4 bytes a chunk), scales [g][super-block][lanes],
// the sums of 16 levels [g][j][lanes]. Each 4-byte chunk of weight bytes is broadcast once and
// split into its low nibbles (sub-block 2c) and high ones (2c + 1), Q5_K's fifth bits (bits 2c
// and 2c + 1 of the same four qh bytes) added as bit 4; one i8 dot adds a chunk to every
// vector's sum. Per lane the integer sums are exact and the f64 expression is row_q4_k's and
// row_q5_k's, (d * dy) * sum - (dmin * dy) * mins added in super-block order, so every output
// equals the other kernels' bit for bit (matvec-native.test.ts).

// Super-blocks per column chunk: one group's levels for a chunk (16 KB at sixteen lanes) stay
// in L1 across a tile of rows, as CHUNK_BLOCKS does for Q4_0.
#define K_CHUNK 4
#define K_CHUNK_ROWS 64

// Super-blocks [b0, b1) of the row at `w` into acc (LANES f64 as LANES / 8 f64x8), for one
// group of LANES vectors; IVEC, BROADCAST and DOT are that width's (kernels.c). BYTES is the
// type's super-block (144 for Q4_K; 176 for Q5_K, whose 32 qh bytes FIFTH says to read).
#define K_ROW_GROUPED(NAME, BYTES, FIFTH, LANES, IVEC, UVEC, BROADCAST, DOT)                       \
  static inline __attribute__((always_inline)) void NAME(const uint8_t* w, int b0, int b1,         \
                                                         const int8_t* yT, const double* ydT,      \
                                                         const int32_t* sT, f64x8* acc) {          \
    for (int b = b0; b < b1; b++) {                                                                \
      const uint8_t* blk = w + (long)(BYTES) * b;                                                  \
      uint8_t sm[16];                                                                              \
      _mm_storeu_si128((__m128i*)sm, q4_k_scales_mins(blk + 4));                                   \
      const uint8_t* qh = blk + 16, *q = blk + ((FIFTH) ? 48 : 16);                                \
      const int8_t* y = yT + (long)(LANES) * 256 * b;                                              \
      IVEC isum = {0};                                                                             \
      for (int c = 0; c < 4; c++) {                                                                \
        IVEC lo = {0}, hi = {0};                                                                   \
        for (int k = 0; k < 8; k++) {                                                              \
          IVEC v = BROADCAST(q + 32 * c + 4 * k);                                                  \
          IVEC l = v & 0x0f0f0f0f, u = (IVEC)(((UVEC)v >> 4) & 0x0f0f0f0f);                        \
          if (FIFTH) {                                                                             \
            UVEC h = (UVEC)BROADCAST(qh + 4 * k);                                                  \
            l |= (IVEC)(((h >> (2 * c)) & 0x01010101) << 4);                                       \
            u |= (IVEC)(((h >> (2 * c + 1)) & 0x01010101) << 4);                                   \
          }                                                                                        \
          lo = DOT(lo, l, y + 4 * (LANES) * (16 * c + k));                                         \
          hi = DOT(hi, u, y + 4 * (LANES) * (16 * c + 8 + k));                                     \
        }                                                                                          \
        isum += lo * (int32_t)sm[2 * c] + hi * (int32_t)sm[2 * c + 1];                             \
      }                                                                                            \
      const int32_t* s = sT + (long)(LANES) * 16 * b;                                              \
      IVEC m = {0};                                                                                \
      for (int j = 0; j < 8; j++) {                                                                \
        IVEC s0, s1;                                                                               \
        memcpy(&s0, s + (LANES) * (2 * j), sizeof s0);                                             \
        memcpy(&s1, s + (LANES) * (2 * j + 1), sizeof s1);                                         \
        m += (s0 + s1) * (int32_t)sm[8 + j];                                                       \
      }                                                                                            \
      double d = fp16(blk), dmin = fp16(blk + 2);                                                  \
      f64x8 dv = {d, d, d, d, d, d, d, d}, mv = {dmin, dmin, dmin, dmin, dmin, dmin, dmin, dmin};  \
      for (int h = 0; h < (LANES) / 8; h++) {                                                      \
        f64x8 dy;                                                                                  \
        memcpy(&dy, ydT + (long)(LANES) * b + 8 * h, 64);                                          \
        i32x8 ih, mh;                                                                              \
        memcpy(&ih, (const int32_t*)&isum + 8 * h, 32);                                            \
        memcpy(&mh, (const int32_t*)&m + 8 * h, 32);                                               \
        acc[h] += (dv * dy) * __builtin_convertvector(ih, f64x8) -                                 \
                  (mv * dy) * __builtin_convertvector(mh, f64x8);                                  \
      }                                                                                            \
    }                                                                                              \
  }

// Rows [r0, r1) times `groups` groups of LANES vectors, in tiles of K_CHUNK_ROWS rows and
// column chunks of K_CHUNK super-blocks; each (row, vector) sum adds its super-blocks in order.
#define K_MATMAT(NAME, ROW, BYTES, LANES)                                                          \
  EXPORT(#NAME)                                                                                    \
  void NAME(const uint8_t* w, int rows, int cols, int groups, int r0, int r1, const int8_t* yT,    \
            const double* ydT, const int32_t* sT, float* out) {                                    \
    int nb = cols / 256, g16 = cols / 16;                                                          \
    long rb = (long)nb * (BYTES);                                                                  \
    f64x8 acc[K_CHUNK_ROWS][(LANES) / 8];                                                          \
    for (int t0 = r0; t0 < r1; t0 += K_CHUNK_ROWS) {                                               \
      int t1 = r1 - t0 > K_CHUNK_ROWS ? t0 + K_CHUNK_ROWS : r1;                                    \
      for (int g = 0; g < groups; g++) {                                                           \
        const int8_t* y = yT + (long)(LANES) * g * cols;                                           \
        const double* d = ydT + (long)(LANES) * g * nb;                                            \
        const int32_t* s = sT + (long)(LANES) * g * g16;                                           \
        for (int r = t0; r < t1; r++) {                                                            \
          for (int h = 0; h < (LANES) / 8; h++) acc[r - t0][h] = (f64x8){0};                       \
        }                                                                                          \
        for (int c0 = 0; c0 < nb; c0 += K_CHUNK) {                                                 \
          int c1 = nb - c0 > K_CHUNK ? c0 + K_CHUNK : nb;                                          \
          for (int r = t0; r < t1; r++) ROW(w + r * rb, c0, c1, y, d, s, acc[r - t0]);             \
        }                                                                                          \
        float* dst = out + (long)(LANES) * g * rows;                                               \
        for (int r = t0; r < t1; r++) {                                                            \
          for (int k = 0; k < (LANES); k++) {                                                      \
            dst[(long)k * rows + r] = (float)acc[r - t0][k >> 3][k & 7];                           \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }

static inline i32x8 k_dot8(i32x8 acc, i32x8 w, const int8_t* y) { return dot8u(acc, w, y); }
K_ROW_GROUPED(row_q4_k_x8, 144, 0, 8, i32x8, u32x8, broadcast8, k_dot8)
K_MATMAT(matvec_q4_k_x8, row_q4_k_x8, 144, 8)
K_ROW_GROUPED(row_q5_k_x8, 176, 1, 8, i32x8, u32x8, broadcast8, k_dot8)
K_MATMAT(matvec_q5_k_x8, row_q5_k_x8, 176, 8)

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
K_ROW_GROUPED(row_q4_k_x16, 144, 0, 16, i32x16, u32x16, broadcast16, dot16x16)
K_MATMAT(matvec_q4_k_x16, row_q4_k_x16, 144, 16)
K_ROW_GROUPED(row_q5_k_x16, 176, 1, 16, i32x16, u32x16, broadcast16, dot16x16)
K_MATMAT(matvec_q5_k_x16, row_q5_k_x16, 176, 16)
#endif
