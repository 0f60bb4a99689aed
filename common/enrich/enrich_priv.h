// enrich_priv.h — the enrichment engine's internals shared by its files (not for users of
// enrich.h): the log-factorial tables of the exact hypergeometric, one distribution's support
// (hg_t) with the screening pmf inlined into the per-feature loop, the exact tails, and the
// Benjamini-Hochberg step.
#ifndef PS_ENRICH_PRIV_H
#define PS_ENRICH_PRIV_H

#include "enrich.h"

struct enrich_hyper {
  int64_t n_max;
  long double *lf;   // ln(i!), i = 0..n_max
  double *lfd;       // the same rounded to double (screening)
  int32_t *primes;
  int64_t n_primes;
};

typedef struct hg {
  int64_t N, K, n, lo, hi, mode;
} hg_t;

static inline void hg_init(const enrich_hyper_t *h, hg_t *g, int64_t N, int64_t K, int64_t n) {
  PS_ASSERT(N >= 0 && N <= h->n_max && K >= 0 && K <= N && n >= 0 && n <= N);
  g->N = N;
  g->K = K;
  g->n = n;
  g->lo = n - (N - K) > 0 ? n - (N - K) : 0;
  g->hi = n < K ? n : K;
  g->mode = (n + 1) * (K + 1) / (N + 2);
  if (g->mode < g->lo) g->mode = g->lo;
  if (g->mode > g->hi) g->mode = g->hi;
}

// ln P(X = k) in double precision (the screen: P(k) alone >= alpha).
static inline double lpmf_d(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  const double *lf = h->lfd;
  int64_t N = g->N, K = g->K, n = g->n;
  return (lf[K] + lf[N - K] + lf[n] + lf[N - n]) - (lf[k] + lf[K - k] + lf[n - k] + lf[N - K - n + k] + lf[N]);
}

// Exact ln P(X >= k) and scipy's two-sided ln p of one distribution (enrich_stats.c).
double enrich_hg_ln_sf(const enrich_hyper_t *h, const hg_t *g, int64_t k);
double enrich_hg_ln_two(const enrich_hyper_t *h, const hg_t *g, int64_t k);

// Benjamini-Hochberg over m tests of which the n smallest p are given, ascending, as ln p in
// v[0..n): replaced in place by their q-values (min 1). The tests not given have p >= those given.
void enrich_bh_q(double *v, uint32_t n, double m);

#endif
