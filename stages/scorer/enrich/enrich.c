// enrich.c — GO enrichment engine: exact hypergeometric tails, per-feature counting, multiple
// testing, summaries and export. See enrich.h for the model and the memory bounds.
#include "enrich.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// ---- options ---------------------------------------------------------------------------------
void enrich_opts_default(enrich_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->min_size = 5;
  o->act_frac = 0;
  o->alternative = ENRICH_GREATER;
  o->correction = ENRICH_BONFERRONI;
  o->alpha = 0.05;
  o->max_hits = 0;
  static const double f1[] = {0, 0.15, 0.5, 0.6, 0.8};
  o->n_f1 = 5;
  memcpy(o->f1_thresholds, f1, sizeof f1);
}

int enrich_alt_parse(const char *s, enrich_alt_t *out) {
  if (!s) return PS_ECONFIG;
  if (!strcmp(s, "greater")) *out = ENRICH_GREATER;
  else if (!strcmp(s, "two-sided")) *out = ENRICH_TWO_SIDED;
  else if (!strcmp(s, "less")) *out = ENRICH_LESS;
  else return PS_ECONFIG;
  return 0;
}

int enrich_corr_parse(const char *s, enrich_corr_t *out) {
  if (!s) return PS_ECONFIG;
  if (!strcmp(s, "bonferroni")) *out = ENRICH_BONFERRONI;
  else if (!strcmp(s, "fdr") || !strcmp(s, "bh")) *out = ENRICH_FDR_BH;
  else return PS_ECONFIG;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int enrich_f1_parse(const char *s, enrich_opts_t *o, ps_err_t *err) {
  double v[ENRICH_MAX_F1];
  uint32_t n = 0;
  const char *p = s;
  while (p && *p) {
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (end == p || errno || !(x >= 0 && x < 1))
      return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': value %u is not a number in [0, 1)", s, n + 1);
    if (n == ENRICH_MAX_F1)
      return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': more than %d values", s, ENRICH_MAX_F1);
    v[n++] = x;
    p = end;
    if (*p == ',') p++;
    else if (*p) return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': expected ',' after value %u", s, n);
  }
  if (n == 0) return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': no value", s ? s : "");
  qsort(v, n, sizeof *v, cmp_double);
  o->n_f1 = n;
  memcpy(o->f1_thresholds, v, n * sizeof *v);
  return 0;
}

static int opts_check(const enrich_opts_t *o, ps_err_t *err) {
  if (o->min_size < 1) return ps_err_set(err, PS_ECONFIG, "enrich: min_size must be >= 1");
  if (!(o->act_frac >= 0 && o->act_frac < 1))
    return ps_err_set(err, PS_ECONFIG, "enrich: act_frac %g not in [0, 1)", o->act_frac);
  if (!(o->alpha > 0 && o->alpha <= 1)) return ps_err_set(err, PS_ECONFIG, "enrich: alpha %g not in (0, 1]", o->alpha);
  if (o->alternative != ENRICH_GREATER && o->alternative != ENRICH_TWO_SIDED)
    return ps_err_set(err, PS_ECONFIG, "enrich: the engine tests 'greater' or 'two-sided' only");
  if (o->correction != ENRICH_BONFERRONI && o->correction != ENRICH_FDR_BH)
    return ps_err_set(err, PS_ECONFIG, "enrich: unknown correction %d", (int)o->correction);
  if (o->n_f1 < 1 || o->n_f1 > ENRICH_MAX_F1)
    return ps_err_set(err, PS_ECONFIG, "enrich: n_f1 %u not in [1, %d]", o->n_f1, ENRICH_MAX_F1);
  for (uint32_t i = 0; i < o->n_f1; i++) {
    double x = o->f1_thresholds[i];
    if (!(x >= 0 && x < 1)) return ps_err_set(err, PS_ECONFIG, "enrich: f1 threshold %g not in [0, 1)", x);
    if (i && !(x > o->f1_thresholds[i - 1]))
      return ps_err_set(err, PS_ECONFIG, "enrich: f1 thresholds must be strictly ascending");
  }
  return 0;
}

// ---- exact hypergeometric --------------------------------------------------------------------
struct enrich_hyper {
  int64_t n_max;
  long double *lf;   // ln(i!), i = 0..n_max
  double *lfd;       // the same rounded to double (screening)
  int32_t *primes;
  int64_t n_primes;
};

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

typedef struct hg {
  int64_t N, K, n, lo, hi, mode;
} hg_t;

static void hg_init(const enrich_hyper_t *h, hg_t *g, int64_t N, int64_t K, int64_t n) {
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

// ln P(X = k) for k in the support.
static long double lpmf_l(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  const long double *lf = h->lf;
  int64_t N = g->N, K = g->K, n = g->n;
  return (lf[K] + lf[N - K] + lf[n] + lf[N - n]) - (lf[k] + lf[K - k] + lf[n - k] + lf[N - K - n + k] + lf[N]);
}

static double lpmf_d(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
  const double *lf = h->lfd;
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

static double ln_sf_g(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
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
  return ln_sf_g(h, &g, k);
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

static double ln_two_g(const enrich_hyper_t *h, const hg_t *g, int64_t k) {
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
  return ln_two_g(h, &g, k);
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

// ---- activations ------------------------------------------------------------------------------
int enrich_csc_check(const enrich_csc_t *c, const char *what, ps_err_t *err) {
  if (c->n_features < 0 || c->n_proteins < 0 || (c->n_features > 0 && !c->indptr))
    return ps_err_set(err, PS_EDIM, "%s: bad shape (%lld features, %lld proteins)", what, (long long)c->n_features,
                      (long long)c->n_proteins);
  if (c->n_features >= (int64_t)UINT32_MAX)
    return ps_err_set(err, PS_EDIM, "%s: %lld features (at most %u)", what, (long long)c->n_features, UINT32_MAX - 1);
  if (c->n_features > 0 && c->indptr[0] != 0)
    return ps_err_set(err, PS_EFORMAT, "%s: indptr[0] is %lld, not 0", what, (long long)c->indptr[0]);
  uint32_t *seen = c->n_proteins ? ps_xcalloc((size_t)c->n_proteins, sizeof *seen) : NULL;
  int rc = 0;
  for (int64_t f = 0; f < c->n_features && !rc; f++) {
    if (c->indptr[f + 1] < c->indptr[f]) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: feature %lld: indptr decreases (%lld -> %lld)", what, (long long)f,
                      (long long)c->indptr[f], (long long)c->indptr[f + 1]);
      break;
    }
    for (int64_t j = c->indptr[f]; j < c->indptr[f + 1]; j++) {
      int32_t r = c->rows[j];
      if (r < 0 || r >= c->n_proteins) {
        rc = ps_err_set(err, PS_EDIM, "%s: feature %lld: entry %lld: protein %d outside [0, %lld)", what, (long long)f,
                        (long long)(j - c->indptr[f]), r, (long long)c->n_proteins);
        break;
      }
      if (!isfinite(c->values[j])) {
        rc = ps_err_set(err, PS_ENAN, "%s: feature %lld: entry %lld (protein %d): value %g is not finite", what,
                        (long long)f, (long long)(j - c->indptr[f]), r, (double)c->values[j]);
        break;
      }
      if (seen[r] == (uint32_t)f + 1) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: feature %lld: entry %lld: protein %d listed twice", what, (long long)f,
                        (long long)(j - c->indptr[f]), r);
        break;
      }
      seen[r] = (uint32_t)f + 1;
    }
  }
  free(seen);
  return rc;
}

int enrich_csc_from_csr(enrich_csc_buf_t *out, int64_t n_rows, int64_t n_features, const int64_t *indptr,
                        const int32_t *cols, const float *values, ps_err_t *err) {
  memset(out, 0, sizeof *out);
  if (n_rows < 0 || n_rows > INT32_MAX || n_features < 0)
    return ps_err_set(err, PS_EDIM, "csr: bad shape (%lld rows, %lld features)", (long long)n_rows,
                      (long long)n_features);
  int64_t nnz = n_rows ? indptr[n_rows] : 0;
  out->indptr = ps_xcalloc((size_t)n_features + 1, sizeof *out->indptr);
  out->rows = ps_xmalloc((size_t)(nnz ? nnz : 1) * sizeof *out->rows);
  out->values = ps_xmalloc((size_t)(nnz ? nnz : 1) * sizeof *out->values);
  for (int64_t r = 0; r < n_rows; r++) {
    if (indptr[r + 1] < indptr[r]) {
      enrich_csc_buf_free(out);
      return ps_err_set(err, PS_EFORMAT, "csr: row %lld: indptr decreases", (long long)r);
    }
    for (int64_t j = indptr[r]; j < indptr[r + 1]; j++) {
      if (cols[j] < 0 || cols[j] >= n_features) {
        int32_t c = cols[j];
        enrich_csc_buf_free(out);
        return ps_err_set(err, PS_EDIM, "csr: row %lld: latent %d outside [0, %lld)", (long long)r, c,
                          (long long)n_features);
      }
      out->indptr[cols[j] + 1]++;
    }
  }
  for (int64_t f = 0; f < n_features; f++) out->indptr[f + 1] += out->indptr[f];
  int64_t *pos = ps_xmalloc((size_t)(n_features ? n_features : 1) * sizeof *pos);
  memcpy(pos, out->indptr, (size_t)n_features * sizeof *pos);
  for (int64_t r = 0; r < n_rows; r++)
    for (int64_t j = indptr[r]; j < indptr[r + 1]; j++) {
      int64_t q = pos[cols[j]]++;
      out->rows[q] = (int32_t)r;
      out->values[q] = values[j];
    }
  free(pos);
  out->csc.n_features = n_features;
  out->csc.n_proteins = n_rows;
  out->csc.indptr = out->indptr;
  out->csc.rows = out->rows;
  out->csc.values = out->values;
  return 0;
}

void enrich_csc_buf_free(enrich_csc_buf_t *b) {
  if (!b) return;
  free(b->indptr);
  free(b->rows);
  free(b->values);
  memset(b, 0, sizeof *b);
}

// ---- engine -------------------------------------------------------------------------------------
struct enrich_engine {
  const go_ontology_t *onto;
  enrich_opts_t opts;
  int64_t n_proteins, pop_n;
  uint32_t m;
  int32_t *tested;     // m: ontology index
  int32_t *compact;    // n_terms: compact index or -1
  uint32_t *K;         // m
  uint8_t *in_pop;     // n_proteins
  int64_t *pt_off;     // n_proteins + 1
  int32_t *pt;         // compact term ids of each analysed protein
  enrich_hyper_t *hyper;
  uint32_t n_lv;                      // activation levels (fractions of the max), ascending
  double lv[ENRICH_MAX_F1 + 2];
  uint32_t study_lv;                  // the level of act_frac
  uint8_t is_f1[ENRICH_MAX_F1 + 2];   // level is an F1 threshold
  double ln_alpha;
};

int enrich_engine_new(enrich_engine_t **out, const go_ontology_t *onto, const go_annotations_t *annot,
                      const int64_t *annot_of, int64_t n_proteins, const enrich_opts_t *opts, ps_err_t *err) {
  *out = NULL;
  enrich_opts_t o;
  if (opts) o = *opts;
  else enrich_opts_default(&o);
  int rc = opts_check(&o, err);
  if (rc) return rc;
  if (n_proteins < 0 || n_proteins > INT32_MAX)
    return ps_err_set(err, PS_EDIM, "enrich: %lld proteins out of range", (long long)n_proteins);
  for (int64_t p = 0; p < n_proteins; p++)
    if (annot_of[p] < -1 || annot_of[p] >= (int64_t)annot->n_proteins)
      return ps_err_set(err, PS_EDIM, "enrich: protein %lld: annotation index %lld outside [-1, %zu)", (long long)p,
                        (long long)annot_of[p], annot->n_proteins);
  size_t nt = go_n_terms(onto);
  enrich_engine_t *e = ps_xcalloc(1, sizeof *e);
  e->onto = onto;
  e->opts = o;
  e->n_proteins = n_proteins;
  e->in_pop = ps_xcalloc((size_t)(n_proteins ? n_proteins : 1), 1);
  uint32_t *Kall = ps_xcalloc(nt ? nt : 1, sizeof *Kall);
  for (int64_t p = 0; p < n_proteins; p++) {
    int64_t a = annot_of[p];
    if (a < 0 || annot->n_terms[a] == 0) continue;
    e->in_pop[p] = 1;
    e->pop_n++;
    for (uint32_t j = 0; j < annot->n_terms[a]; j++) {
      int32_t t = annot->terms[a][j];
      PS_ASSERT(t >= 0 && (size_t)t < nt);
      Kall[t]++;
    }
  }
  e->compact = ps_xmalloc((nt ? nt : 1) * sizeof *e->compact);
  for (size_t t = 0; t < nt; t++) {
    const go_term_t *gt = go_term(onto, (int32_t)t);
    e->compact[t] = -1;
    if (Kall[t] >= o.min_size && !gt->obsolete) e->compact[t] = (int32_t)e->m++;
  }
  if (e->pop_n == 0 || e->m == 0) {
    rc = ps_err_set(err, PS_EMISMATCH,
                    "enrich: nothing to test: %lld of %lld analysed proteins have annotations, %u terms have >= %u of "
                    "them (do the protein ids match the annotation file's accessions?)",
                    (long long)e->pop_n, (long long)n_proteins, e->m, o.min_size);
    free(Kall);
    enrich_engine_free(&e);
    return rc;
  }
  e->tested = ps_xmalloc(e->m * sizeof *e->tested);
  e->K = ps_xmalloc(e->m * sizeof *e->K);
  for (size_t t = 0; t < nt; t++)
    if (e->compact[t] >= 0) {
      e->tested[e->compact[t]] = (int32_t)t;
      e->K[e->compact[t]] = Kall[t];
    }
  free(Kall);
  e->pt_off = ps_xmalloc((size_t)(n_proteins + 1) * sizeof *e->pt_off);
  e->pt_off[0] = 0;
  for (int64_t p = 0; p < n_proteins; p++) {
    int64_t c = 0;
    if (e->in_pop[p])
      for (uint32_t j = 0; j < annot->n_terms[annot_of[p]]; j++) c += e->compact[annot->terms[annot_of[p]][j]] >= 0;
    e->pt_off[p + 1] = e->pt_off[p] + c;
  }
  e->pt = ps_xmalloc((size_t)(e->pt_off[n_proteins] ? e->pt_off[n_proteins] : 1) * sizeof *e->pt);
  for (int64_t p = 0; p < n_proteins; p++) {
    if (!e->in_pop[p]) continue;
    int64_t q = e->pt_off[p];
    for (uint32_t j = 0; j < annot->n_terms[annot_of[p]]; j++) {
      int32_t c = e->compact[annot->terms[annot_of[p]][j]];
      if (c >= 0) e->pt[q++] = c;
    }
  }
  rc = enrich_hyper_new(&e->hyper, e->pop_n, err);
  if (rc) {
    enrich_engine_free(&e);
    return rc;
  }
  // activation levels: {0} U f1 thresholds U {act_frac}, ascending, unique
  double lv[ENRICH_MAX_F1 + 2];
  uint32_t nl = 0;
  lv[nl++] = 0;
  for (uint32_t i = 0; i < o.n_f1; i++) lv[nl++] = o.f1_thresholds[i];
  lv[nl++] = o.act_frac;
  qsort(lv, nl, sizeof *lv, cmp_double);
  for (uint32_t i = 0; i < nl; i++)
    if (e->n_lv == 0 || lv[i] != e->lv[e->n_lv - 1]) e->lv[e->n_lv++] = lv[i];
  for (uint32_t b = 0; b < e->n_lv; b++) {
    if (e->lv[b] == o.act_frac) e->study_lv = b;
    for (uint32_t i = 0; i < o.n_f1; i++)
      if (e->lv[b] == o.f1_thresholds[i]) e->is_f1[b] = 1;
  }
  e->ln_alpha = log(o.alpha);
  *out = e;
  return 0;
}

void enrich_engine_free(enrich_engine_t **ep) {
  if (!ep || !*ep) return;
  enrich_engine_t *e = *ep;
  free(e->tested);
  free(e->compact);
  free(e->K);
  free(e->in_pop);
  free(e->pt_off);
  free(e->pt);
  enrich_hyper_free(&e->hyper);
  free(e);
  *ep = NULL;
}

const go_ontology_t *enrich_ontology(const enrich_engine_t *e) { return e->onto; }
const enrich_opts_t *enrich_engine_opts(const enrich_engine_t *e) { return &e->opts; }
int64_t enrich_n_proteins(const enrich_engine_t *e) { return e->n_proteins; }
int64_t enrich_pop_size(const enrich_engine_t *e) { return e->pop_n; }
uint32_t enrich_n_tested(const enrich_engine_t *e) { return e->m; }
const enrich_hyper_t *enrich_engine_hyper(const enrich_engine_t *e) { return e->hyper; }
int32_t enrich_tested_term(const enrich_engine_t *e, uint32_t i) { return i < e->m ? e->tested[i] : -1; }
uint32_t enrich_term_pop(const enrich_engine_t *e, int32_t term) {
  if (term < 0 || (size_t)term >= go_n_terms(e->onto) || e->compact[term] < 0) return 0;
  return e->K[e->compact[term]];
}

// ---- the per-feature pass -----------------------------------------------------------------------
typedef struct cand {
  double ln_p;
  int32_t c;          // compact term
  uint32_t k;
  float f1, f1_thr;
} cand_t;

typedef struct ws {
  uint32_t *counts;   // m x n_lv
  uint32_t *stamp;    // m
  int32_t *touched;   // m
  cand_t *cand;       // m
  enrich_hit_t *hits; // this thread's kept hits (features in the order it ran them)
  int64_t n_hits, cap_hits;
  uint64_t n_touched, n_exact;
} ws_t;

static int cand_cmp(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->ln_p != y->ln_p) return x->ln_p < y->ln_p ? -1 : 1;
  return (x->c > y->c) - (x->c < y->c);
}

static void run_feature(const enrich_engine_t *e, ws_t *w, const enrich_csc_t *a, int64_t f, enrich_feature_t *out) {
  const uint32_t nl = e->n_lv, sl = e->study_lv;
  const uint32_t cur = (uint32_t)f + 1;
  int64_t j0 = a->indptr[f], j1 = a->indptr[f + 1];
  memset(out, 0, sizeof *out);
  out->best_f1_term = -1;
  float mx = 0;
  for (int64_t j = j0; j < j1; j++) mx = a->values[j] > mx ? a->values[j] : mx;
  out->max_act = mx;
  if (mx <= 0) return;
  double thr[ENRICH_MAX_F1 + 2];
  for (uint32_t b = 0; b < nl; b++) thr[b] = e->lv[b] * (double)mx;
  uint32_t npred[ENRICH_MAX_F1 + 2] = {0};
  uint32_t nt = 0;
  for (int64_t j = j0; j < j1; j++) {
    double v = a->values[j];
    if (!(v > 0)) continue;
    uint32_t b = 0;
    while (b + 1 < nl && v > thr[b + 1]) b++;
    int32_t p = a->rows[j];
    if (b >= sl) out->n_active++;
    if (!e->in_pop[p]) continue;
    npred[b]++;
    for (int64_t q = e->pt_off[p]; q < e->pt_off[p + 1]; q++) {
      int32_t c = e->pt[q];
      uint32_t *cc = w->counts + (size_t)c * nl;
      if (w->stamp[c] != cur) {
        w->stamp[c] = cur;
        memset(cc, 0, nl * sizeof *cc);
        w->touched[nt++] = c;
      }
      cc[b]++;
    }
  }
  int64_t n = 0;
  for (uint32_t b = sl; b < nl; b++) n += npred[b];
  out->n_study = n;
  out->n_touched = nt;
  w->n_touched += nt;
  const int64_t N = e->pop_n;
  const int two = e->opts.alternative == ENRICH_TWO_SIDED;
  const double screen = e->ln_alpha + 1e-9;
  uint32_t ncand = 0;
  uint32_t iters = two ? e->m : nt;
  for (uint32_t i = 0; i < iters; i++) {
    int32_t c = two ? (int32_t)i : w->touched[i];
    int hit = w->stamp[c] == cur;
    uint32_t k = 0;
    float f1 = 0, f1_thr = 0;
    const uint32_t K = e->K[c];
    if (hit) {
      const uint32_t *cc = w->counts + (size_t)c * nl;
      uint32_t tp = 0, pr = 0;
      for (uint32_t b = nl; b-- > 0;) {
        tp += cc[b];
        pr += npred[b];
        if (b == sl) k = tp;
        if (e->is_f1[b]) {
          float v = (float)(2.0 * tp / ((double)pr + K));
          if (v > f1) {
            f1 = v;
            f1_thr = (float)e->lv[b];
          }
        }
      }
    }
    if (n == 0 || (k == 0 && !two)) continue;
    hg_t g;
    hg_init(e->hyper, &g, N, K, n);
    if (lpmf_d(e->hyper, &g, k) >= screen) continue;  // p >= P(k) > alpha
    w->n_exact++;
    double lp = two ? ln_two_g(e->hyper, &g, k) : ln_sf_g(e->hyper, &g, k);
    if (!(lp < e->ln_alpha)) continue;
    cand_t *cd = &w->cand[ncand++];
    cd->ln_p = lp;
    cd->c = c;
    cd->k = k;
    cd->f1 = f1;
    cd->f1_thr = f1_thr;
  }
  if (ncand == 0) return;
  qsort(w->cand, ncand, sizeof *w->cand, cand_cmp);
  // BH from the largest candidate down; the terms not listed have p >= alpha, so a q < alpha is
  // exact and a q >= alpha only says "not significant".
  const double m = e->m, lm = log(m);
  double qmin = INFINITY;
  int64_t h0 = w->n_hits;
  uint32_t kept = 0;
  double *qv = ps_xmalloc(ncand * sizeof *qv);
  for (uint32_t i = ncand; i-- > 0;) {
    double q = exp(w->cand[i].ln_p + lm - log((double)i + 1));
    if (q < qmin) qmin = q;
    qv[i] = qmin < 1 ? qmin : 1;
  }
  for (uint32_t i = 0; i < ncand; i++) {
    const cand_t *cd = &w->cand[i];
    uint32_t K = e->K[cd->c];
    if (!((uint64_t)cd->k * (uint64_t)N > (uint64_t)n * K)) continue;  // not enriched
    double p = exp(cd->ln_p), pb = exp(cd->ln_p + lm);
    if (pb > 1) pb = 1;
    int sig = e->opts.correction == ENRICH_BONFERRONI ? cd->ln_p + lm < e->ln_alpha : qv[i] < e->opts.alpha;
    if (!sig) continue;
    if (cd->f1 > out->best_f1 || out->best_f1_term < 0) {
      out->best_f1 = cd->f1;
      out->best_f1_threshold = cd->f1_thr;
      out->best_f1_term = e->tested[cd->c];
    }
    if (e->opts.max_hits && kept >= e->opts.max_hits) continue;
    if (w->n_hits == w->cap_hits) {
      w->cap_hits = w->cap_hits ? w->cap_hits * 2 : 1024;
      w->hits = ps_xrealloc(w->hits, (size_t)w->cap_hits * sizeof *w->hits);
    }
    enrich_hit_t *hp = &w->hits[w->n_hits++];
    hp->term = e->tested[cd->c];
    hp->k = cd->k;
    hp->K = K;
    hp->f1 = cd->f1;
    hp->f1_threshold = cd->f1_thr;
    hp->ln_p = cd->ln_p;
    hp->p = p;
    hp->p_bonf = pb;
    hp->q_bh = qv[i];
    hp->fold = ((double)cd->k * (double)N) / ((double)n * (double)K);
    kept++;
  }
  free(qv);
  out->n_hits = kept;
  out->hit0 = h0;
}

typedef struct run_ctx {
  const enrich_engine_t *e;
  const enrich_csc_t *a;
  enrich_results_t *res;
  ws_t *ws;
  int32_t *owner;      // per feature: the thread that ran it
  atomic_llong next;
} run_ctx_t;

#define ENRICH_CHUNK 8

static void run_thread(void *vctx, int tid, int nthreads) {
  (void)nthreads;
  run_ctx_t *x = vctx;
  const enrich_engine_t *e = x->e;
  ws_t *w = &x->ws[tid];
  w->counts = ps_xmalloc((size_t)e->m * e->n_lv * sizeof *w->counts);
  w->stamp = ps_xcalloc(e->m, sizeof *w->stamp);
  w->touched = ps_xmalloc(e->m * sizeof *w->touched);
  w->cand = ps_xmalloc(e->m * sizeof *w->cand);
  const int64_t nf = x->a->n_features;
  for (;;) {
    int64_t f0 = atomic_fetch_add(&x->next, ENRICH_CHUNK);
    if (f0 >= nf) break;
    int64_t f1 = f0 + ENRICH_CHUNK < nf ? f0 + ENRICH_CHUNK : nf;
    for (int64_t f = f0; f < f1; f++) {
      run_feature(e, w, x->a, f, &x->res->features[f]);
      x->owner[f] = tid;
    }
  }
  free(w->counts);
  free(w->stamp);
  free(w->touched);
  free(w->cand);
  w->counts = NULL;
  w->stamp = NULL;
  w->touched = NULL;
  w->cand = NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int enrich_run(const enrich_engine_t *e, const enrich_csc_t *acts, ps_pool_t *pool, enrich_results_t *res,
               ps_err_t *err) {
  memset(res, 0, sizeof *res);
  double t0 = now_s();
  if (acts->n_proteins != e->n_proteins)
    return ps_err_set(err, PS_EDIM, "enrich: activations cover %lld proteins, the engine was built for %lld",
                      (long long)acts->n_proteins, (long long)e->n_proteins);
  int rc = enrich_csc_check(acts, "activations", err);
  if (rc) return rc;
  int nt = ps_pool_size(pool);
  res->n_features = acts->n_features;
  res->pop_n = e->pop_n;
  res->n_tested = e->m;
  res->opts = e->opts;
  res->features = ps_xcalloc((size_t)(acts->n_features ? acts->n_features : 1), sizeof *res->features);
  run_ctx_t x;
  memset(&x, 0, sizeof x);
  x.e = e;
  x.a = acts;
  x.res = res;
  x.ws = ps_xcalloc((size_t)nt, sizeof *x.ws);
  x.owner = ps_xmalloc((size_t)(acts->n_features ? acts->n_features : 1) * sizeof *x.owner);
  atomic_init(&x.next, 0);
  ps_pool_run(pool, run_thread, &x);
  // gather the threads' hits in feature order
  int64_t total = 0;
  for (int t = 0; t < nt; t++) {
    total += x.ws[t].n_hits;
    res->n_touched += x.ws[t].n_touched;
    res->n_exact += x.ws[t].n_exact;
  }
  res->hits = ps_xmalloc((size_t)(total ? total : 1) * sizeof *res->hits);
  int64_t o = 0;
  for (int64_t f = 0; f < acts->n_features; f++) {
    enrich_feature_t *ft = &res->features[f];
    if (ft->n_hits) memcpy(res->hits + o, x.ws[x.owner[f]].hits + ft->hit0, ft->n_hits * sizeof *res->hits);
    ft->hit0 = o;
    o += ft->n_hits;
  }
  res->n_hits = o;
  for (int t = 0; t < nt; t++) free(x.ws[t].hits);
  free(x.ws);
  free(x.owner);
  res->seconds = now_s() - t0;
  return 0;
}

void enrich_results_free(enrich_results_t *r) {
  if (!r) return;
  free(r->features);
  free(r->hits);
  memset(r, 0, sizeof *r);
}

const enrich_hit_t *enrich_feature_hits(const enrich_results_t *r, int64_t feature, uint32_t *n) {
  if (feature < 0 || feature >= r->n_features) {
    if (n) *n = 0;
    return NULL;
  }
  if (n) *n = r->features[feature].n_hits;
  return r->hits + r->features[feature].hit0;
}

static const char *ns_short(go_namespace_t ns) {
  static const char *s[] = {"BP", "MF", "CC", "?"};
  return s[ns <= GO_NS_UNKNOWN ? ns : GO_NS_UNKNOWN];
}

size_t enrich_feature_describe(const enrich_engine_t *e, const enrich_results_t *r, int64_t feature, size_t cap,
                               char *buf, size_t buf_size) {
  uint32_t n = 0;
  const enrich_hit_t *h = enrich_feature_hits(r, feature, &n);
  size_t used = 0, w = 0;
  if (buf_size) buf[0] = 0;
  for (uint32_t i = 0; i < n && w < cap; i++) {
    const go_term_t *t = go_term(e->onto, h[i].term);
    char line[512];
    int len = snprintf(line, sizeof line, "%s\t%s\t%s\t%.3g\t%.2f\t%u/%lld\n", t->id, t->name, ns_short(t->ns), h[i].p,
                       h[i].fold, h[i].k, (long long)r->features[feature].n_study);
    if (len < 0 || used + (size_t)len + 1 > buf_size) break;
    memcpy(buf + used, line, (size_t)len + 1);
    used += (size_t)len;
    w++;
  }
  return w;
}

// ---- DAG distances ----------------------------------------------------------------------------
typedef struct bfs {
  int32_t *da, *db;   // n_terms, -1 = not reached
  int32_t *qa, *qb;   // visited lists (queues)
  size_t na, nb;
} bfs_t;

static void bfs_init(bfs_t *b, size_t nt) {
  b->da = ps_xmalloc(nt * sizeof *b->da);
  b->db = ps_xmalloc(nt * sizeof *b->db);
  b->qa = ps_xmalloc(nt * sizeof *b->qa);
  b->qb = ps_xmalloc(nt * sizeof *b->qb);
  for (size_t i = 0; i < nt; i++) b->da[i] = b->db[i] = -1;
  b->na = b->nb = 0;
}

static void bfs_free(bfs_t *b) {
  free(b->da);
  free(b->db);
  free(b->qa);
  free(b->qb);
}

static size_t bfs_up(const go_ontology_t *o, int32_t s, int32_t *d, int32_t *q) {
  size_t head = 0, tail = 0;
  d[s] = 0;
  q[tail++] = s;
  while (head < tail) {
    int32_t u = q[head++];
    const go_term_t *t = go_term(o, u);
    for (uint32_t i = 0; i < t->n_parents; i++) {
      int32_t p = t->parents[i];
      if (d[p] < 0) {
        d[p] = d[u] + 1;
        q[tail++] = p;
      }
    }
  }
  return tail;
}

// distance, lca depth, and whether one is the other's ancestor
static int32_t pair_dist(const go_ontology_t *o, bfs_t *b, int32_t x, int32_t y, int32_t *lca, int *nested) {
  b->na = bfs_up(o, x, b->da, b->qa);
  b->nb = bfs_up(o, y, b->db, b->qb);
  int32_t best = -1, dep = -1;
  for (size_t i = 0; i < b->nb; i++) {
    int32_t c = b->qb[i];
    if (b->da[c] < 0) continue;
    int32_t d = b->da[c] + b->db[c];
    if (best < 0 || d < best) best = d;
    int32_t cd = go_term(o, c)->depth;
    if (cd > dep) dep = cd;
  }
  if (nested) *nested = b->da[y] >= 0 || b->db[x] >= 0;
  for (size_t i = 0; i < b->na; i++) b->da[b->qa[i]] = -1;
  for (size_t i = 0; i < b->nb; i++) b->db[b->qb[i]] = -1;
  if (lca) *lca = dep;
  return best;
}

int32_t enrich_term_distance(const go_ontology_t *o, int32_t a, int32_t b, int32_t *lca_depth) {
  size_t nt = go_n_terms(o);
  if (a < 0 || b < 0 || (size_t)a >= nt || (size_t)b >= nt) {
    if (lca_depth) *lca_depth = -1;
    return -1;
  }
  bfs_t s;
  bfs_init(&s, nt);
  int32_t d = pair_dist(o, &s, a, b, lca_depth, NULL);
  bfs_free(&s);
  return d;
}

// ---- summaries --------------------------------------------------------------------------------
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

typedef struct pair_acc {
  double dist, lca, nested;
  int64_t n;
} pair_acc_t;

static void group_pairs(const go_ontology_t *o, bfs_t *b, const int32_t *terms, uint32_t n, pair_acc_t *acc) {
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = i + 1; j < n; j++) {
      int32_t lca;
      int nested;
      int32_t d = pair_dist(o, b, terms[i], terms[j], &lca, &nested);
      if (d < 0) continue;
      acc->dist += d;
      acc->lca += lca;
      acc->nested += nested;
      acc->n++;
    }
}

void enrich_summarize(const enrich_engine_t *e, const enrich_results_t *r, uint64_t seed, uint32_t mono_top,
                      enrich_summary_t *s) {
  memset(s, 0, sizeof *s);
  if (mono_top == 0) mono_top = 10;
  const go_ontology_t *o = e->onto;
  size_t nt = go_n_terms(o);
  s->n_features = r->n_features;
  uint8_t *seen = ps_xcalloc(nt ? nt : 1, 1);
  float *f1s = ps_xmalloc((size_t)(r->n_features ? r->n_features : 1) * sizeof *f1s);
  int64_t nf1 = 0;
  double depth_sum = 0;
  // tested terms by namespace, for the random baseline
  int32_t *by_ns[3];
  uint32_t n_ns[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) by_ns[k] = ps_xmalloc(e->m * sizeof *by_ns[k]);
  for (uint32_t i = 0; i < e->m; i++) {
    go_namespace_t ns = go_term(o, e->tested[i])->ns;
    if (ns < 3) by_ns[ns][n_ns[ns]++] = e->tested[i];
  }
  bfs_t b;
  bfs_init(&b, nt ? nt : 1);
  int32_t grp[64], rgrp[64];
  if (mono_top > 64) mono_top = 64;
  double feat_dist = 0, feat_rdist = 0, feat_lca = 0, feat_rlca = 0, feat_nest = 0, feat_rnest = 0;
  for (int64_t f = 0; f < r->n_features; f++) {
    const enrich_feature_t *ft = &r->features[f];
    if (ft->n_study > 0) {
      s->n_alive++;
      f1s[nf1++] = ft->best_f1;
      if (ft->best_f1 >= 0.5f) s->f1_over_05++;
    }
    if (ft->n_hits == 0) continue;
    s->with_any++;
    int has[3] = {0, 0, 0};
    const enrich_hit_t *h = r->hits + ft->hit0;
    for (uint32_t i = 0; i < ft->n_hits; i++) {
      const go_term_t *t = go_term(o, h[i].term);
      if (t->ns < 3) has[t->ns] = 1;
      int32_t d = t->depth < 0 ? 0 : t->depth > ENRICH_MAX_DEPTH ? ENRICH_MAX_DEPTH : t->depth;
      s->by_depth[d]++;
      depth_sum += t->depth;
      s->n_sig_pairs++;
      if (!seen[h[i].term]) {
        seen[h[i].term] = 1;
        s->n_sig_terms++;
      }
    }
    for (int k = 0; k < 3; k++) s->with_ns[k] += has[k];
    // monosemanticity: per namespace, the top terms vs random tested terms of that namespace
    pair_acc_t fr = {0}, fq = {0};
    for (int k = 0; k < 3; k++) {
      uint32_t g = 0;
      for (uint32_t i = 0; i < ft->n_hits && g < mono_top; i++)
        if (go_term(o, h[i].term)->ns == (go_namespace_t)k) grp[g++] = h[i].term;
      if (g < 2 || n_ns[k] < g) continue;
      uint64_t st = mix64(seed ^ mix64((uint64_t)f * 4 + (uint64_t)k));
      uint32_t rg = 0;
      while (rg < g) {
        st = mix64(st);
        int32_t t = by_ns[k][st % n_ns[k]];
        int dup = 0;
        for (uint32_t i = 0; i < rg; i++) dup |= rgrp[i] == t;
        if (!dup) rgrp[rg++] = t;
      }
      group_pairs(o, &b, grp, g, &fr);
      group_pairs(o, &b, rgrp, g, &fq);
    }
    if (fr.n > 0 && fq.n > 0) {
      s->mono_features++;
      feat_dist += fr.dist / (double)fr.n;
      feat_lca += fr.lca / (double)fr.n;
      feat_nest += fr.nested / (double)fr.n;
      feat_rdist += fq.dist / (double)fq.n;
      feat_rlca += fq.lca / (double)fq.n;
      feat_rnest += fq.nested / (double)fq.n;
    }
  }
  if (s->mono_features) {
    double k = (double)s->mono_features;
    s->mono_dist = feat_dist / k;
    s->mono_rand_dist = feat_rdist / k;
    s->mono_lca_depth = feat_lca / k;
    s->mono_rand_lca_depth = feat_rlca / k;
    s->mono_same_branch = feat_nest / k;
    s->mono_rand_same_branch = feat_rnest / k;
  }
  s->mean_depth = s->n_sig_pairs ? depth_sum / (double)s->n_sig_pairs : 0;
  if (nf1) {
    qsort(f1s, (size_t)nf1, sizeof *f1s, cmp_float);
    s->median_best_f1 = nf1 % 2 ? f1s[nf1 / 2] : 0.5 * ((double)f1s[nf1 / 2 - 1] + f1s[nf1 / 2]);
  }
  bfs_free(&b);
  for (int k = 0; k < 3; k++) free(by_ns[k]);
  free(seen);
  free(f1s);
}

static double frac(int64_t a, int64_t b) { return b ? (double)a / (double)b : 0; }

void enrich_summary_print(const enrich_summary_t *s, const char *prefix, FILE *f) {
  const char *p = prefix ? prefix : "";
  fprintf(f, "%sfeatures: %lld\n%sfeatures_alive: %lld\n", p, (long long)s->n_features, p, (long long)s->n_alive);
  fprintf(f, "%sfrac_with_term: %.4f\n", p, frac(s->with_any, s->n_features));
  fprintf(f, "%sfrac_with_term_bp: %.4f\n%sfrac_with_term_mf: %.4f\n%sfrac_with_term_cc: %.4f\n", p,
          frac(s->with_ns[0], s->n_features), p, frac(s->with_ns[1], s->n_features), p,
          frac(s->with_ns[2], s->n_features));
  fprintf(f, "%sfrac_alive_with_term: %.4f\n", p, frac(s->with_any, s->n_alive));
  fprintf(f, "%ssig_pairs: %lld\n%ssig_terms_distinct: %lld\n%ssig_mean_depth: %.3f\n", p, (long long)s->n_sig_pairs, p,
          (long long)s->n_sig_terms, p, s->mean_depth);
  fprintf(f, "%ssig_by_depth:", p);
  int last = 0;
  for (int d = 0; d <= ENRICH_MAX_DEPTH; d++)
    if (s->by_depth[d]) last = d;
  for (int d = 0; d <= last; d++) fprintf(f, "%s%d=%lld", d ? " " : " ", d, (long long)s->by_depth[d]);
  fprintf(f, "\n");
  fprintf(f, "%smedian_best_f1: %.4f\n%sfrac_alive_best_f1_ge_0.5: %.4f\n", p, s->median_best_f1, p,
          frac(s->f1_over_05, s->n_alive));
  fprintf(f, "%smono_features: %lld\n", p, (long long)s->mono_features);
  fprintf(f, "%smono_dag_distance: %.3f\n%smono_dag_distance_random: %.3f\n", p, s->mono_dist, p, s->mono_rand_dist);
  fprintf(f, "%smono_lca_depth: %.3f\n%smono_lca_depth_random: %.3f\n", p, s->mono_lca_depth, p,
          s->mono_rand_lca_depth);
  fprintf(f, "%smono_nested_pairs: %.4f\n%smono_nested_pairs_random: %.4f\n", p, s->mono_same_branch, p,
          s->mono_rand_same_branch);
}

void enrich_summary_print_pair(const enrich_summary_t *a, const char *name_a, const enrich_summary_t *b,
                               const char *name_b, FILE *f) {
  fprintf(f, "%-36s %12s %12s\n", "", name_a, name_b);
  fprintf(f, "%-36s %12lld %12lld\n", "features", (long long)a->n_features, (long long)b->n_features);
  fprintf(f, "%-36s %12lld %12lld\n", "alive (active on an annotated protein)", (long long)a->n_alive,
          (long long)b->n_alive);
  fprintf(f, "%-36s %12.4f %12.4f\n", "with >= 1 significant term", frac(a->with_any, a->n_features),
          frac(b->with_any, b->n_features));
  static const char *nsn[3] = {"  ... biological_process", "  ... molecular_function", "  ... cellular_component"};
  for (int k = 0; k < 3; k++)
    fprintf(f, "%-36s %12.4f %12.4f\n", nsn[k], frac(a->with_ns[k], a->n_features), frac(b->with_ns[k], b->n_features));
  fprintf(f, "%-36s %12lld %12lld\n", "significant (feature, term) pairs", (long long)a->n_sig_pairs,
          (long long)b->n_sig_pairs);
  fprintf(f, "%-36s %12lld %12lld\n", "distinct significant terms", (long long)a->n_sig_terms,
          (long long)b->n_sig_terms);
  fprintf(f, "%-36s %12.3f %12.3f\n", "mean GO depth of significant terms", a->mean_depth, b->mean_depth);
  for (int d = 0; d <= ENRICH_MAX_DEPTH; d++) {
    if (!a->by_depth[d] && !b->by_depth[d]) continue;
    char lab[64];
    snprintf(lab, sizeof lab, "  significant pairs at depth %d%s", d, d == ENRICH_MAX_DEPTH ? "+" : "");
    fprintf(f, "%-36s %12lld %12lld\n", lab, (long long)a->by_depth[d], (long long)b->by_depth[d]);
  }
  fprintf(f, "%-36s %12.4f %12.4f\n", "median best F1 (alive)", a->median_best_f1, b->median_best_f1);
  fprintf(f, "%-36s %12.4f %12.4f\n", "best F1 >= 0.5 (alive)", frac(a->f1_over_05, a->n_alive),
          frac(b->f1_over_05, b->n_alive));
  fprintf(f, "%-36s %12lld %12lld\n", "features with >= 2 terms (mono)", (long long)a->mono_features,
          (long long)b->mono_features);
  fprintf(f, "%-36s %5.2f/%-6.2f %5.2f/%-6.2f\n", "DAG distance (terms/random)", a->mono_dist, a->mono_rand_dist,
          b->mono_dist, b->mono_rand_dist);
  fprintf(f, "%-36s %5.2f/%-6.2f %5.2f/%-6.2f\n", "LCA depth (terms/random)", a->mono_lca_depth,
          a->mono_rand_lca_depth, b->mono_lca_depth, b->mono_rand_lca_depth);
  fprintf(f, "%-36s %5.2f/%-6.2f %5.2f/%-6.2f\n", "nested pairs (terms/random)", a->mono_same_branch,
          a->mono_rand_same_branch, b->mono_same_branch, b->mono_rand_same_branch);
}

// ---- export -------------------------------------------------------------------------------------
static int tsv_open(FILE **f, char *tmp, size_t cap, const char *path, ps_err_t *err) {
  snprintf(tmp, cap, "%s.tmp", path);
  *f = fopen(tmp, "w");
  if (!*f) return ps_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
  return 0;
}

static int tsv_close(FILE *f, const char *tmp, const char *path, ps_err_t *err) {
  int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;
  int e = errno;
  if (fclose(f) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (bad) {
    remove(tmp);
    return ps_err_set(err, e ? -e : PS_EIO, "%s: write failed: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    e = errno;
    remove(tmp);
    return ps_err_set(err, -e, "%s: rename to %s: %s", tmp, path, strerror(e));
  }
  return 0;
}

int enrich_write_tsv(const enrich_engine_t *e, const enrich_results_t *r, const char *path, ps_err_t *err) {
  FILE *f;
  char tmp[4096];
  int rc = tsv_open(&f, tmp, sizeof tmp, path, err);
  if (rc) return rc;
  fprintf(f, "feature\tgo_id\tnamespace\tdepth\tname\tk\tn\tK\tN\tfold\tp\tln_p\tp_bonf\tq_bh\tf1\tf1_threshold\n");
  for (int64_t fi = 0; fi < r->n_features; fi++) {
    const enrich_feature_t *ft = &r->features[fi];
    for (uint32_t i = 0; i < ft->n_hits; i++) {
      const enrich_hit_t *h = &r->hits[ft->hit0 + i];
      const go_term_t *t = go_term(e->onto, h->term);
      fprintf(f, "%lld\t%s\t%s\t%d\t%s\t%u\t%lld\t%u\t%lld\t%.6g\t%.6e\t%.10g\t%.6e\t%.6e\t%.4f\t%.2f\n", (long long)fi,
              t->id, go_namespace_name(t->ns), t->depth, t->name, h->k, (long long)ft->n_study, h->K,
              (long long)r->pop_n, h->fold, h->p, h->ln_p, h->p_bonf, h->q_bh, (double)h->f1,
              (double)h->f1_threshold);
    }
  }
  return tsv_close(f, tmp, path, err);
}

int enrich_write_features_tsv(const enrich_engine_t *e, const enrich_results_t *r, const char *path, ps_err_t *err) {
  FILE *f;
  char tmp[4096];
  int rc = tsv_open(&f, tmp, sizeof tmp, path, err);
  if (rc) return rc;
  fprintf(f, "feature\tn_active\tn_study\tmax_act\tn_touched\tn_hits\ttop_go_id\ttop_name\ttop_p\tbest_f1_go_id\t"
             "best_f1\tbest_f1_threshold\n");
  for (int64_t fi = 0; fi < r->n_features; fi++) {
    const enrich_feature_t *ft = &r->features[fi];
    const go_term_t *top = ft->n_hits ? go_term(e->onto, r->hits[ft->hit0].term) : NULL;
    const go_term_t *bf = ft->best_f1_term >= 0 ? go_term(e->onto, ft->best_f1_term) : NULL;
    fprintf(f, "%lld\t%lld\t%lld\t%.6g\t%u\t%u\t%s\t%s\t%.6e\t%s\t%.4f\t%.2f\n", (long long)fi, (long long)ft->n_active,
            (long long)ft->n_study, (double)ft->max_act, ft->n_touched, ft->n_hits, top ? top->id : "-",
            top ? top->name : "-", top ? r->hits[ft->hit0].p : 1.0, bf ? bf->id : "-", (double)ft->best_f1,
            (double)ft->best_f1_threshold);
  }
  return tsv_close(f, tmp, path, err);
}
