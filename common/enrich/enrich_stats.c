// enrich_stats.c — the enrichment engine's statistics: exact hypergeometric probabilities
// (log-factorial tables in long double, tails summed in log space with the terms' ratio
// recurrence), scipy's two-sided Fisher p with ties decided in exact integer arithmetic (prime
// factorisations), and the Benjamini-Hochberg q-values. See enrich.h.
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "enrich_priv.h"

// ---- exact hypergeometric --------------------------------------------------------------------

int enrich_hyper_new(enrich_hyper_t **out, int64_t n_max, ps_err_t *err) {
  *out = NULL;
  if (n_max < 1 || n_max > ((int64_t)1 << 30))
    return ps_err_set(err, PS_ECONFIG, "enrich: hypergeometric table size %lld out of range", (long long)n_max);
  enrich_hyper_t *h = ps_xcalloc(1, sizeof *h);
  h->n_max = n_max;
  h->lf = ps_xmalloc((size_t)(n_max + 1) * sizeof *h->lf);
  h->lfd = ps_xmalloc((size_t)(n_max + 1) * sizeof *h->lfd);
  for (int64_t i = 0; i <= n_max; i++) {
    h->lf[i] = lgammal((long double)i + 1.0L);
    h->lfd[i] = (double)h->lf[i];
  }
  uint8_t *comp = ps_xcalloc((size_t)n_max + 1, 1);
  int64_t np = 0;
  for (int64_t i = 2; i <= n_max; i++) {
    if (comp[i]) continue;
    np++;
    for (int64_t j = i * i; j <= n_max; j += i) comp[j] = 1;
  }
  h->primes = ps_xmalloc((size_t)(np ? np : 1) * sizeof *h->primes);
  for (int64_t i = 2; i <= n_max; i++)
    if (!comp[i]) h->primes[h->n_primes++] = (int32_t)i;
  free(comp);
  *out = h;
  return 0;
}

void enrich_hyper_free(enrich_hyper_t **hp) {
  if (!hp || !*hp) return;
  free((*hp)->lf);
  free((*hp)->lfd);
  free((*hp)->primes);
  free(*hp);
  *hp = NULL;
}

// ln P(X = k) for k in the support.
static long double lpmf_l(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  const long double *lf = h->lf;
  int64_t N = g->N, K = g->K, n = g->n;
  return (lf[K] + lf[N - K] + lf[n] + lf[N - n]) - (lf[k] + lf[K - k] + lf[n - k] + lf[N - K - n + k] + lf[N]);
}

double enrich_ln_pmf(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n) {
  hg_t g;
  hg_init(h, &g, N, K, n);
  if (k < g.lo || k > g.hi) return -INFINITY;
  return (double)lpmf_l(h, &g, k);
}

// ln sum_{i = x}^{hi} P(i) for mode <= x <= hi (the terms decrease from x on).
static long double ln_up(const enrich_hyper_t *h, const hg_t *g, int64_t x) {
  double s = 1, t = 1;
  int64_t N = g->N, K = g->K, n = g->n;
  for (int64_t i = x; i < g->hi; i++) {
    t *= ((double)(K - i) * (double)(n - i)) / ((double)(i + 1) * (double)(N - K - n + i + 1));
    s += t;
    if (t < s * 1e-18) break;
  }
  return lpmf_l(h, g, x) + logl((long double)s);
}

// ln sum_{i = lo}^{x} P(i) for lo <= x <= mode (the terms decrease from x downwards).
static long double ln_down(const enrich_hyper_t *h, const hg_t *g, int64_t x) {
  double s = 1, t = 1;
  int64_t N = g->N, K = g->K, n = g->n;
  for (int64_t i = x; i > g->lo; i--) {
    t *= ((double)i * (double)(N - K - n + i)) / ((double)(K - i + 1) * (double)(n - i + 1));
    s += t;
    if (t < s * 1e-18) break;
  }
  return lpmf_l(h, g, x) + logl((long double)s);
}

double enrich_hg_ln_sf(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  if (k <= g->lo) return 0;
  if (k > g->hi) return -INFINITY;
  if (k >= g->mode) return (double)ln_up(h, g, k);
  double L = (double)expl(ln_down(h, g, k - 1));
  return L >= 1 ? -INFINITY : log1p(-L);
}

static double ln_cdf_g(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  if (k >= g->hi) return 0;
  if (k < g->lo) return -INFINITY;
  if (k <= g->mode) return (double)ln_down(h, g, k);
  double U = (double)expl(ln_up(h, g, k + 1));
  return U >= 1 ? -INFINITY : log1p(-U);
}

double enrich_ln_sf(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n) {
  hg_t g;
  hg_init(h, &g, N, K, n);
  return enrich_hg_ln_sf(h, &g, k);
}

double enrich_ln_cdf(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n) {
  hg_t g;
  hg_init(h, &g, N, K, n);
  return ln_cdf_g(h, &g, k);
}

static int64_t legendre(int64_t m, int64_t p) {
  int64_t e = 0;
  while (m >= p) {
    m /= p;
    e += m;
  }
  return e;
}

// Sign of P(x) - P(k), exact: near-ties are decided from the prime factorisation of the ratio
// P(x) / P(k) = k! (K-k)! (n-k)! (N-K-n+k)! / (x! (K-x)! (n-x)! (N-K-n+x)!).
static int pmf_cmp(const enrich_hyper_t *h, const hg_t *g, int64_t x, int64_t k) {
  if (x == k) return 0;
  long double d = lpmf_l(h, g, x) - lpmf_l(h, g, k);
  if (d > 1e-9L) return 1;
  if (d < -1e-9L) return -1;
  int64_t N = g->N, K = g->K, n = g->n;
  int64_t num[4] = {k, K - k, n - k, N - K - n + k}, den[4] = {x, K - x, n - x, N - K - n + x};
  int64_t top = 0;
  for (int i = 0; i < 4; i++) {
    if (num[i] > top) top = num[i];
    if (den[i] > top) top = den[i];
  }
  long double s = 0;
  int nonzero = 0;
  for (int64_t j = 0; j < h->n_primes && h->primes[j] <= top; j++) {
    int64_t p = h->primes[j], e = 0;
    for (int i = 0; i < 4; i++) e += legendre(num[i], p) - legendre(den[i], p);
    if (e) {
      nonzero = 1;
      s += (long double)e * logl((long double)p);
    }
  }
  if (!nonzero) return 0;
  return s > 0 ? 1 : -1;
}

static double logaddexp(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double m = a > b ? a : b;
  return m + log1p(exp(-fabs(a - b)));
}

double enrich_hg_ln_two(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  if (k < g->lo || k > g->hi) return -INFINITY;
  if (pmf_cmp(h, g, k, g->mode) == 0) return 0;
  double own, other = -INFINITY;
  if (k < g->mode) {
    own = (double)ln_down(h, g, k);
    if (pmf_cmp(h, g, g->hi, k) <= 0) {
      // smallest x in (mode, hi] with P(x) <= P(k) (P decreases over [mode, hi])
      int64_t a = g->mode + 1, b = g->hi;
      while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (pmf_cmp(h, g, mid, k) <= 0) b = mid;
        else a = mid + 1;
      }
      other = (double)ln_up(h, g, a);
    }
  } else {
    own = (double)ln_up(h, g, k);
    if (pmf_cmp(h, g, g->lo, k) <= 0) {
      // largest x in [lo, mode) with P(x) <= P(k) (P increases over [lo, mode])
      int64_t a = g->lo, b = g->mode - 1;
      while (a < b) {
        int64_t mid = a + (b - a + 1) / 2;
        if (pmf_cmp(h, g, mid, k) <= 0) a = mid;
        else b = mid - 1;
      }
      other = (double)ln_down(h, g, a);
    }
  }
  double r = logaddexp(own, other);
  return r > 0 ? 0 : r;
}

double enrich_ln_two_sided(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n) {
  hg_t g;
  hg_init(h, &g, N, K, n);
  return enrich_hg_ln_two(h, &g, k);
}

double enrich_fisher_ln_p(const enrich_hyper_t *h, int64_t a, int64_t b, int64_t c, int64_t d, enrich_alt_t alt) {
  PS_ASSERT(a >= 0 && b >= 0 && c >= 0 && d >= 0);
  if (a + b == 0 || c + d == 0 || a + c == 0 || b + d == 0) return 0;
  int64_t N = a + b + c + d, K = a + b, n = a + c;
  switch (alt) {
    case ENRICH_GREATER: return enrich_ln_sf(h, a, N, K, n);
    case ENRICH_LESS: return enrich_ln_cdf(h, a, N, K, n);
    default: return enrich_ln_two_sided(h, a, N, K, n);
  }
}

void enrich_bh_q(double *v, uint32_t n, double m) {
  const double lm = log(m);
  double qmin = INFINITY;
  for (uint32_t i = n; i-- > 0;) {
    double q = exp(v[i] + lm - log((double)i + 1));
    if (q < qmin) qmin = q;
    v[i] = qmin < 1 ? qmin : 1;
  }
}
