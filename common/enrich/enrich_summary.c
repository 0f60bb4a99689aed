// enrich_summary.c — what an enrichment run says as a whole: shortest DAG distances between GO
// terms, the summary (coverage, depth, F1, monosemanticity against random terms) and its
// printing, alone or side by side. See enrich.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enrich.h"
#include "hash.h"

// ---- DAG distances ----------------------------------------------------------------------------
typedef struct bfs {
  int32_t *da, *db;   // n_terms, -1 = not reached
  int32_t *qa, *qb;   // visited lists (queues)
  size_t na, nb;
  int is_a_depth;     // the LCA depth along is_a only (ENRICH_DEPTH_IS_A)
} bfs_t;

static void bfs_init(bfs_t *b, size_t nt) {
  b->da = ps_xmalloc(nt * sizeof *b->da);
  b->db = ps_xmalloc(nt * sizeof *b->db);
  b->qa = ps_xmalloc(nt * sizeof *b->qa);
  b->qb = ps_xmalloc(nt * sizeof *b->qb);
  for (size_t i = 0; i < nt; i++) b->da[i] = b->db[i] = -1;
  b->na = b->nb = 0;
  b->is_a_depth = 0;
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
    int32_t cd = b->is_a_depth ? go_term(o, c)->depth_is_a : go_term(o, c)->depth;
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
// One splitmix64 step of state x (hash.h): the random baseline's draws.
static uint64_t mix64(uint64_t x) { return ps_mix64(x + 0x9E3779B97F4A7C15ull); }

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
  const go_ontology_t *o = enrich_ontology(e);
  const uint32_t m = enrich_n_tested(e);
  size_t nt = go_n_terms(o);
  s->n_features = r->n_features;
  uint8_t *seen = ps_xcalloc(nt ? nt : 1, 1);
  float *f1s = ps_xmalloc((size_t)(r->n_features ? r->n_features : 1) * sizeof *f1s);
  int64_t nf1 = 0;
  double depth_sum = 0;
  // tested terms by namespace, for the random baseline
  int32_t *by_ns[3];
  uint32_t n_ns[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) by_ns[k] = ps_xmalloc(m * sizeof *by_ns[k]);
  for (uint32_t i = 0; i < m; i++) {
    int32_t t = enrich_tested_term(e, i);
    go_namespace_t ns = go_term(o, t)->ns;
    if (ns < 3) by_ns[ns][n_ns[ns]++] = t;
  }
  bfs_t b;
  bfs_init(&b, nt ? nt : 1);
  b.is_a_depth = enrich_engine_opts(e)->depth == ENRICH_DEPTH_IS_A;
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
      int32_t td = enrich_term_depth(e, h[i].term);
      int32_t d = td < 0 ? 0 : td > ENRICH_MAX_DEPTH ? ENRICH_MAX_DEPTH : td;
      s->by_depth[d]++;
      depth_sum += td;
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

