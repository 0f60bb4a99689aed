// pool.h — a fixed pool of threads for data-parallel loops with static partitions.
//
// ps_pool_run(p, fn, ctx) calls fn(ctx, tid, n) once on each of the n threads (the caller is
// tid 0) and returns when all have finished. Work is split by the caller with ps_pool_range, so
// every thread always gets the same slice for the same n: results that depend on summation
// order are bitwise reproducible at a fixed thread count. Idle workers sleep on a condition
// variable (no spinning), so the pool never competes with BLAS threads between runs.
// Memory: n - 1 threads with default stacks.
#ifndef PS_POOL_H
#define PS_POOL_H

#include <stdint.h>

typedef struct ps_pool ps_pool_t;
typedef void (*ps_pool_fn)(void *ctx, int tid, int nthreads);

// nthreads <= 0: the number of online CPUs. Returns NULL on failure (errno set).
ps_pool_t *ps_pool_new(int nthreads);
void ps_pool_destroy(ps_pool_t **p);   // accepts NULL
int ps_pool_size(const ps_pool_t *p);  // 1 for NULL
// Run fn on every thread; p == NULL runs fn(ctx, 0, 1) inline.
void ps_pool_run(ps_pool_t *p, ps_pool_fn fn, void *ctx);

// Slice [*begin, *end) of [0, n) for thread tid of nt (contiguous, sizes differ by at most 1).
static inline void ps_pool_range(int64_t n, int tid, int nt, int64_t *begin, int64_t *end) {
  int64_t q = n / nt, r = n % nt;
  *begin = tid * q + (tid < r ? tid : r);
  *end = *begin + q + (tid < r ? 1 : 0);
}

#endif
