// enrich_engine.c — the GO enrichment engine: the tested terms and per-protein term
// lists built once (enrich_engine_new), the per-feature counting pass with screening, exact
// p-values and multiple testing run over a thread pool (enrich_run), and the results' accessors.
// Options: enrich_opts.c; statistics: enrich_stats.c; summaries: enrich_summary.c; TSV export: enrich_tsv.c. See enrich.h.
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enrich_priv.h"
#include "io.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
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
  uint8_t *ns;         // m: namespace (go_namespace_t) of each tested term
  uint32_t m_ns[4];    // tested terms per namespace (the families of ENRICH_SCOPE_NAMESPACE)
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
  int rc = enrich_opts_check(&o, err);
  if (rc) return rc;
  if (n_proteins < 0 || n_proteins > INT32_MAX)
    return ps_err_set(err, PS_EDIM, "enrich: %lld proteins out of range", (long long)n_proteins);
  for (int64_t p = 0; p < n_proteins; p++)
    if (annot_of[p] < -2 || annot_of[p] >= (int64_t)annot->n_proteins)
      return ps_err_set(err, PS_EDIM, "enrich: protein %lld: annotation index %lld outside [-2, %zu)", (long long)p,
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
    int annotated = a >= 0 && annot->n_terms[a] > 0;
    if (a == -2 || (!annotated && o.population != ENRICH_POP_ANALYSED)) continue;
    e->in_pop[p] = 1;
    e->pop_n++;
    if (!annotated) continue;
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
                    "enrich: nothing to test: %lld of %lld analysed proteins in the population, %u terms have >= %u "
                    "annotated ones (do the protein ids match the annotation file's accessions?)",
                    (long long)e->pop_n, (long long)n_proteins, e->m, o.min_size);
    free(Kall);
    enrich_engine_free(&e);
    return rc;
  }
  e->tested = ps_xmalloc(e->m * sizeof *e->tested);
  e->K = ps_xmalloc(e->m * sizeof *e->K);
  e->ns = ps_xmalloc(e->m);
  for (size_t t = 0; t < nt; t++)
    if (e->compact[t] >= 0) {
      go_namespace_t ns = go_term(onto, (int32_t)t)->ns;
      e->tested[e->compact[t]] = (int32_t)t;
      e->K[e->compact[t]] = Kall[t];
      e->ns[e->compact[t]] = (uint8_t)(ns <= GO_NS_UNKNOWN ? ns : GO_NS_UNKNOWN);
      e->m_ns[e->ns[e->compact[t]]]++;
    }
  free(Kall);
  e->pt_off = ps_xmalloc((size_t)(n_proteins + 1) * sizeof *e->pt_off);
  e->pt_off[0] = 0;
  for (int64_t p = 0; p < n_proteins; p++) {
    int64_t c = 0;
    if (e->in_pop[p] && annot_of[p] >= 0)
      for (uint32_t j = 0; j < annot->n_terms[annot_of[p]]; j++) c += e->compact[annot->terms[annot_of[p]][j]] >= 0;
    e->pt_off[p + 1] = e->pt_off[p] + c;
  }
  e->pt = ps_xmalloc((size_t)(e->pt_off[n_proteins] ? e->pt_off[n_proteins] : 1) * sizeof *e->pt);
  for (int64_t p = 0; p < n_proteins; p++) {
    if (!e->in_pop[p] || annot_of[p] < 0) continue;
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
  free(e->ns);
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
uint32_t enrich_term_family(const enrich_engine_t *e, int32_t term) {
  if (term < 0 || (size_t)term >= go_n_terms(e->onto) || e->compact[term] < 0) return 0;
  return e->opts.scope == ENRICH_SCOPE_NAMESPACE ? e->m_ns[e->ns[e->compact[term]]] : e->m;
}
int32_t enrich_term_depth(const enrich_engine_t *e, int32_t term) {
  const go_term_t *t = go_term(e->onto, term);
  if (!t) return -1;
  return e->opts.depth == ENRICH_DEPTH_IS_A ? t->depth_is_a : t->depth;
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
    double lp = two ? enrich_hg_ln_two(e->hyper, &g, k) : enrich_hg_ln_sf(e->hyper, &g, k);
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
  // exact and a q >= alpha only says "not significant". Under ENRICH_SCOPE_NAMESPACE each
  // namespace's candidates (still ascending) are corrected as their own family of m_ns terms.
  int64_t h0 = w->n_hits;
  uint32_t kept = 0;
  double *qv = ps_xmalloc(ncand * sizeof *qv);
  if (e->opts.scope == ENRICH_SCOPE_NAMESPACE) {
    uint32_t *idx = ps_xmalloc(ncand * sizeof *idx);
    double *sub = ps_xmalloc(ncand * sizeof *sub);
    for (uint8_t g = 0; g <= GO_NS_UNKNOWN; g++) {
      uint32_t ng = 0;
      for (uint32_t i = 0; i < ncand; i++)
        if (e->ns[w->cand[i].c] == g) {
          idx[ng] = i;
          sub[ng++] = w->cand[i].ln_p;
        }
      if (ng == 0) continue;
      enrich_bh_q(sub, ng, e->m_ns[g]);
      for (uint32_t j = 0; j < ng; j++) qv[idx[j]] = sub[j];
    }
    free(idx);
    free(sub);
  } else {
    for (uint32_t i = 0; i < ncand; i++) qv[i] = w->cand[i].ln_p;
    enrich_bh_q(qv, ncand, e->m);
  }
  for (uint32_t i = 0; i < ncand; i++) {
    const cand_t *cd = &w->cand[i];
    uint32_t K = e->K[cd->c];
    if (!((uint64_t)cd->k * (uint64_t)N > (uint64_t)n * K)) continue;  // not enriched
    const double lm = log(e->opts.scope == ENRICH_SCOPE_NAMESPACE ? (double)e->m_ns[e->ns[cd->c]] : (double)e->m);
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

int enrich_run(const enrich_engine_t *e, const enrich_csc_t *acts, ps_pool_t *pool, enrich_results_t *res,
               ps_err_t *err) {
  memset(res, 0, sizeof *res);
  double t0 = ps_mono_s();
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
  res->seconds = ps_mono_s() - t0;
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

