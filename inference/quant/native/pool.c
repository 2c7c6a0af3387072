// The native build's entry points (build.ts compiles this with ../wasm/kernels.c):
// kernels by name, and a second thread that takes the upper half of a big
// product's rows, as ../wasm/threads.ts does for the WASM build. Both halves
// run the same code on disjoint rows, so the outputs equal one thread's.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef void (*kernel_fn)(const uint8_t*, int, int, int, int, int, const int8_t*, const double*,
                          const int32_t*, float*);

#define KERNELS(X)                                                                          \
  X(matvec_q8_0) X(matvec_q4_0) X(matvec_q4_k) X(matvec_q5_k) X(matvec_q6_k) X(matvec_q5_0) \
  X(matvec_q5_1) X(matvec_q2_k) X(matvec_q3_k) X(matvec_iq4_nl) X(matvec_iq4_xs)            \
  X(matvec_mxfp4) X(matvec_q4_0_x4) X(matvec_q8_0_x4) X(matvec_q4_k_x4) X(matvec_q6_k_x4)          \
  X(matvec_q4_0_x8) X(attn_rows_f16) X(matmul_f32) X(silu_mul_rows) X(quantize_q8_0_rows)   \
  X(quantize_q8_k_rows) KERNELS_AVX2(X) KERNELS_512(X)

// Kernels built only where the CPU has AVX2 and F16C (matvec-native.ts asks before using them).
#if defined(__AVX2__) && defined(__F16C__)
#define KERNELS_AVX2(X) X(matvec_q4_k_x8) X(matvec_q5_k_x8)
#else
#define KERNELS_AVX2(X)
#endif

// Kernels built only where the CPU has AVX-512 VNNI (matvec-native.ts asks before using them).
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#define KERNELS_512(X) X(matvec_q4_0_x16) X(matvec_q4_k_x16) X(matvec_q5_k_x16)
#else
#define KERNELS_512(X)
#endif

// Elementwise work in rows of 1024 values (matvec-native.ts's VALUES_PER_ROW), so that the
// two threads can share a long one: the row kernels below call these on [r0, r1)'s values.
void silu_mul_f32(float* gate, const float* up, int n);
void quantize_q8_0(const float* x, int total, int8_t* qs, float* d, int32_t* sums16);
void quantize_q8_k(const float* x, int total, int8_t* qs, float* d, int32_t* sums16);
#define VALUES_PER_ROW 1024

static inline void value_range(int r0, int r1, int count, int* i0, int* n) {
  long a = (long)r0 * VALUES_PER_ROW, b = (long)r1 * VALUES_PER_ROW;
  *i0 = (int)a;
  *n = (int)((b < count ? b : count) - a);
}

// gate = silu(gate) * up over `count` values: w is up, out is gate.
static void silu_mul_rows(const uint8_t* up, int rows, int count, int n, int r0, int r1,
                          const int8_t* a, const double* b, const int32_t* c, float* gate) {
  (void)rows, (void)n, (void)a, (void)b, (void)c;
  int i0, len;
  value_range(r0, r1, count, &i0, &len);
  if (len > 0) silu_mul_f32(gate + i0, (const float*)up + i0, len);
}

// Activation rounding over `total` values (whole blocks a row, as 1024 is of 32 and 256): w is
// the input, and the levels, scales and sums of 16 go where yq, yd and ys point.
#define QUANTIZE_ROWS(name, fn, block)                                                       \
  static void name(const uint8_t* x, int rows, int total, int n, int r0, int r1,              \
                   const int8_t* qs, const double* d, const int32_t* sums16, float* out) {    \
    (void)rows, (void)n, (void)out;                                                          \
    int i0, len;                                                                             \
    value_range(r0, r1, total, &i0, &len);                                                   \
    if (len > 0) {                                                                           \
      fn((const float*)x + i0, len, (int8_t*)qs + i0, (float*)d + i0 / (block),              \
         (int32_t*)sums16 + i0 / 16);                                                        \
    }                                                                                        \
  }
QUANTIZE_ROWS(quantize_q8_0_rows, quantize_q8_0, 32)
QUANTIZE_ROWS(quantize_q8_k_rows, quantize_q8_k, 256)

#define DECLARE(name)                                                                         \
  void name(const uint8_t*, int, int, int, int, int, const int8_t*, const double*,            \
            const int32_t*, float*);
KERNELS(DECLARE)
#define ENTRY(name) {#name, name},
static const struct {
  const char* name;
  kernel_fn fn;
} TABLE[] = {KERNELS(ENTRY)};
#define COUNT ((int)(sizeof TABLE / sizeof TABLE[0]))

#define EXPORT __attribute__((visibility("default")))

// Index of the kernel called `name`, or -1.
EXPORT int grove_kernel(const char* name) {
  for (int i = 0; i < COUNT; i++) {
    if (strcmp(TABLE[i].name, name) == 0) return i;
  }
  return -1;
}

struct job {
  int k, rows, cols, n, r0, r1;
  const uint8_t* w;
  const int8_t* yq;
  const double* yd;
  const int32_t* ys;
  float* out;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER, taken = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t posted = PTHREAD_COND_INITIALIZER, finished = PTHREAD_COND_INITIALIZER;
static struct job pending;
static atomic_int seq, done, running;
static pthread_t helper;
// Spins (~50 us) before sleeping: the other half usually ends within microseconds, and decode's
// next product follows within tens of them; longer spins steal a loaded machine's cores.
#define SPINS 2000

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void run(const struct job* j) {
  TABLE[j->k].fn(j->w, j->rows, j->cols, j->n, j->r0, j->r1, j->yq, j->yd, j->ys, j->out);
}

static void* helper_main(void* arg) {
  (void)arg;
  int seen = 0;
  for (;;) {
    int s = 0;
    for (int i = 0; i < SPINS && (s = atomic_load(&seq)) == seen; i++) relax();
    if (s == seen) {
      pthread_mutex_lock(&mu);
      while ((s = atomic_load(&seq)) == seen) pthread_cond_wait(&posted, &mu);
      pthread_mutex_unlock(&mu);
    }
    if (s < 0) return 0;
    struct job j = pending;
    seen = s;
    run(&j);
    pthread_mutex_lock(&mu);
    atomic_store(&done, s);
    pthread_cond_signal(&finished);
    pthread_mutex_unlock(&mu);
  }
}

// Starts the helper thread (once); 1 when it runs.
EXPORT int grove_threads_start(void) {
  if (atomic_load(&running)) return 1;
  if (pthread_create(&helper, 0, helper_main, 0) != 0) return 0;
  atomic_store(&running, 1);
  return 1;
}

// Kernel k over rows [0, rows); with `split`, the upper half on the helper thread.
EXPORT void grove_run(int k, const uint8_t* w, int rows, int cols, int n, const int8_t* yq,
                      const double* yd, const int32_t* ys, float* out, int split) {
  struct job j = {k, rows, cols, n, 0, rows, w, yq, yd, ys, out};
  if (k < 0 || k >= COUNT) return;
  // One split at a time: the helper holds one pending job, and a second caller (another Deno
  // worker in this process, which shares this library) would overwrite it and wait forever.
  // A caller that finds the helper taken computes all its rows itself: the same results.
  if (!split || !atomic_load(&running) || rows < 2 || pthread_mutex_trylock(&taken) != 0) {
    return run(&j);
  }
  int mid = rows >> 1;
  pthread_mutex_lock(&mu);
  pending = j;
  pending.r0 = mid;
  int s = (atomic_load(&seq) + 1) & 0x3fffffff;
  atomic_store(&seq, s);
  pthread_cond_signal(&posted);
  pthread_mutex_unlock(&mu);
  j.r1 = mid;
  run(&j);
  for (int i = 0; i < SPINS && atomic_load(&done) != s; i++) relax();
  if (atomic_load(&done) != s) {
    pthread_mutex_lock(&mu);
    while (atomic_load(&done) != s) pthread_cond_wait(&finished, &mu);
    pthread_mutex_unlock(&mu);
  }
  pthread_mutex_unlock(&taken);
}
