// GO enrichment engine (common/enrich): exact hypergeometric tails against brute force
// with integers (every table with N <= 24, all three alternatives), known scipy values, extreme
// tails below 1e-300 in log space; the engine on a hand-made ontology (study sets, population
// without unannotated proteins, propagation, act_frac, F1, Bonferroni, BH, only enriched terms
// kept, dead features), the same results with 1 and 2 threads, bad input (errors name the
// feature and the position), DAG distances, summaries, TSV export and the describe API; the
// options of issue 18 (population analysed, -2 = left out, correction per namespace for
// Bonferroni and BH, is_a-only propagation, is_a depth) and their configuration keys.
// The comparison against scipy itself is tests/unit/enrich_scipy.py.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"

#include "config.h"
#include "enrich.h"

// ---- exact arithmetic ------------------------------------------------------------------------
static uint64_t choose(int64_t n, int64_t k) {
  if (k < 0 || k > n) return 0;
  uint64_t r = 1;
  for (int64_t i = 1; i <= k; i++) r = r * (uint64_t)(n - k + i) / (uint64_t)i;
  return r;
}

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-300 ? fabs(b) : 1e-300); }

static void test_bruteforce(void **state) {
  (void)state;
  enrich_hyper_t *h = NULL;
  assert_int_equal(enrich_hyper_new(&h, 24, NULL), 0);
  double worst = 0;
  long checked = 0;
  for (int64_t N = 1; N <= 24; N++)
    for (int64_t K = 0; K <= N; K++)
      for (int64_t n = 0; n <= N; n++) {
        uint64_t tot = choose(N, n), w[25];
        for (int64_t x = 0; x <= n; x++) w[x] = choose(K, x) * choose(N - K, n - x);
        for (int64_t k = 0; k <= n; k++) {
          if (w[k] == 0) continue;
          uint64_t up = 0, dn = 0, two = 0;
          for (int64_t x = 0; x <= n; x++) {
            if (x >= k) up += w[x];
            if (x <= k) dn += w[x];
            if (w[x] <= w[k]) two += w[x];
          }
          double e_up = (double)up / (double)tot, e_dn = (double)dn / (double)tot, e_two = (double)two / (double)tot;
          double g_up = exp(enrich_ln_sf(h, k, N, K, n)), g_dn = exp(enrich_ln_cdf(h, k, N, K, n));
          double g_two = exp(enrich_ln_two_sided(h, k, N, K, n));
          double r1 = rel(g_up, e_up), r2 = rel(g_dn, e_dn), r3 = rel(g_two, e_two > 1 ? 1 : e_two);
          if (r1 > 1e-12 || r2 > 1e-12 || r3 > 1e-12)
            fail_msg("N=%lld K=%lld n=%lld k=%lld: sf %.17g vs %.17g, cdf %.17g vs %.17g, two %.17g vs %.17g",
                     (long long)N, (long long)K, (long long)n, (long long)k, g_up, e_up, g_dn, e_dn, g_two, e_two);
          worst = fmax(worst, fmax(r1, fmax(r2, r3)));
          checked++;
        }
      }
  printf("brute force: %ld (N, K, n, k) checked, max rel err %.3g\n", checked, worst);
  enrich_hyper_free(&h);
  assert_null(h);
}

static void test_known_and_extreme(void **state) {
  (void)state;
  enrich_hyper_t *h = NULL;
  assert_int_equal(enrich_hyper_new(&h, 20000, NULL), 0);
  // scipy.stats.fisher_exact documentation values
  assert_true(rel(exp(enrich_fisher_ln_p(h, 6, 2, 1, 4, ENRICH_GREATER)), 0.08624708624708625) < 1e-13);
  assert_true(rel(exp(enrich_fisher_ln_p(h, 6, 2, 1, 4, ENRICH_LESS)), 0.9953379953379954) < 1e-13);
  assert_true(rel(exp(enrich_fisher_ln_p(h, 8, 2, 1, 5, ENRICH_TWO_SIDED)), 0.034965034965034975) < 1e-13);
  assert_true(enrich_fisher_ln_p(h, 0, 0, 3, 4, ENRICH_TWO_SIDED) == 0);  // a zero row: p = 1
  // full overlap: P = 1 / C(N, n), far below the double range
  int64_t N = 17424;
  for (int64_t n = 10; n <= 3000; n *= 3) {
    long double exact = -(lgammal(N + 1.0L) - lgammal(n + 1.0L) - lgammal(N - n + 1.0L));
    double got = enrich_ln_sf(h, n, N, n, n);
    if (fabs(got - (double)exact) > 1e-9 * fabs((double)exact))
      fail_msg("full overlap n=%lld: ln p %.17g, exact %.17Lg", (long long)n, got, exact);
    if (n >= 300) assert_true(got < log(1e-300));
  }
  // a symmetric table: P(x) = P(n - x) exactly; the two-sided p counts both tails
  double one = exp(enrich_ln_cdf(h, 3, 1000, 500, 500)), two = exp(enrich_ln_two_sided(h, 3, 1000, 500, 500));
  assert_true(rel(two, 2 * one) < 1e-12);
  // the mode: p = 1
  assert_true(enrich_ln_two_sided(h, 250, 1000, 500, 500) == 0);
  // sf + cdf(k - 1) = 1 in the bulk
  for (int64_t k = 180; k < 320; k += 7) {
    double s = exp(enrich_ln_sf(h, k, 17424, 3000, 1500)) + exp(enrich_ln_cdf(h, k - 1, 17424, 3000, 1500));
    assert_true(fabs(s - 1) < 1e-13);
  }
  enrich_hyper_free(&h);
}

// ---- a hand-made ontology -----------------------------------------------------------------------
// BP root R (GO:0000001) <- A (2) <- C (4); A <- D (5) part_of B (3) <- R; MF root M (10) <- M1 (11)
static const char *OBO =
    "format-version: 1.2\n\n"
    "[Term]\nid: GO:0000001\nname: root bp\nnamespace: biological_process\n\n"
    "[Term]\nid: GO:0000002\nname: term A\nnamespace: biological_process\nis_a: GO:0000001\n\n"
    "[Term]\nid: GO:0000003\nname: term B\nnamespace: biological_process\nis_a: GO:0000001\n\n"
    "[Term]\nid: GO:0000004\nname: term C\nnamespace: biological_process\nis_a: GO:0000002\n\n"
    "[Term]\nid: GO:0000005\nname: term D\nnamespace: biological_process\nis_a: GO:0000002\n"
    "relationship: part_of GO:0000003\n\n"
    "[Term]\nid: GO:0000010\nname: root mf\nnamespace: molecular_function\n\n"
    "[Term]\nid: GO:0000011\nname: binding M1\nnamespace: molecular_function\nis_a: GO:0000010\n\n"
    "[Term]\nid: GO:0000012\nname: rare\nnamespace: molecular_function\nis_a: GO:0000010\n";

typedef struct gofx {
  go_ontology_t *o;
  go_annotations_t *an;
  int64_t annot_of[41];  // P1..P40, then X1 (no annotation)
} gofx_t;

static void gofx_init(gofx_t *f) {
  memset(f, 0, sizeof *f);
  ps_err_t err = {0};
  assert_int_equal(go_ontology_parse(&f->o, OBO, strlen(OBO), "test.obo", NULL, &err), 0);
  char path[PATH_MAX + 16];
  fx_path(path, sizeof path, "a.tsv");
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fprintf(fp, "accession\tgo_id\tevidence\taspect\n");
  for (int p = 1; p <= 40; p++) {
    const char *t = p <= 10 ? "GO:0000004" : p <= 20 ? "GO:0000005" : "GO:0000011";
    fprintf(fp, "P%d\t%s\tIDA\tX\n", p, t);
  }
  fprintf(fp, "P40\tGO:0000012\tIDA\tF\n");  // a term below min_size
  fclose(fp);
  f->an = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(f->an, f->o, path, NULL, NULL, &err), 0);
  unlink(path);
  go_annotations_propagate(f->an, f->o);
  for (int p = 0; p < 40; p++) {
    char id[16];
    snprintf(id, sizeof id, "P%d", p + 1);
    f->annot_of[p] = go_annotations_find(f->an, id);
    assert_true(f->annot_of[p] >= 0);
  }
  f->annot_of[40] = -1;
}

static void gofx_free(gofx_t *f) {
  go_annotations_destroy(&f->an);
  go_ontology_destroy(&f->o);
}

// features: 0 = P1..P10 + X1 (values 1..11); 1 = dead; 2 = P21..P30 at 10, P31..P40 at 1;
// 3 = every protein
static void build_acts(int64_t *indptr, int32_t *rows, float *vals) {
  int64_t z = 0;
  indptr[0] = 0;
  for (int p = 0; p < 10; p++) rows[z] = p, vals[z++] = (float)(p + 1);
  rows[z] = 40, vals[z++] = 11;
  indptr[1] = z;
  indptr[2] = z;
  for (int p = 20; p < 40; p++) rows[z] = p, vals[z++] = p < 30 ? 10.0f : 1.0f;
  indptr[3] = z;
  for (int p = 0; p < 41; p++) rows[z] = p, vals[z++] = 1;
  indptr[4] = z;
}

static const enrich_hit_t *find_hit(const enrich_results_t *r, int64_t f, const go_ontology_t *o, const char *id) {
  uint32_t n;
  const enrich_hit_t *h = enrich_feature_hits(r, f, &n);
  for (uint32_t i = 0; i < n; i++)
    if (h[i].term == go_lookup(o, id)) return &h[i];
  return NULL;
}

static void test_engine(void **state) {
  (void)state;
  gofx_t F;
  gofx_init(&F);
  ps_err_t err = {0};
  enrich_opts_t opts;
  enrich_opts_default(&opts);
  opts.correction = ENRICH_FDR_BH;
  enrich_engine_t *e = NULL;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  assert_int_equal(enrich_pop_size(e), 40);
  assert_int_equal(enrich_n_tested(e), 7);  // all but GO:0000012 (1 protein)
  assert_int_equal(enrich_term_pop(e, go_lookup(F.o, "GO:0000001")), 20);
  assert_int_equal(enrich_term_pop(e, go_lookup(F.o, "GO:0000003")), 10);  // via part_of
  assert_int_equal(enrich_term_pop(e, go_lookup(F.o, "GO:0000012")), 0);
  int64_t indptr[5];
  int32_t rows[128];
  float vals[128];
  build_acts(indptr, rows, vals);
  enrich_csc_t csc = {4, 41, indptr, rows, vals};
  enrich_results_t r1, r2;
  assert_int_equal(enrich_run(e, &csc, NULL, &r1, &err), 0);
  // feature 0: study = P1..P10 (X1 is active but not in the population)
  assert_int_equal(r1.features[0].n_active, 11);
  assert_int_equal(r1.features[0].n_study, 10);
  assert_int_equal(r1.features[0].n_hits, 3);  // C, then A and the BP root (same table)
  const enrich_hit_t *hc = find_hit(&r1, 0, F.o, "GO:0000004"), *ha = find_hit(&r1, 0, F.o, "GO:0000002");
  const enrich_hit_t *hr = find_hit(&r1, 0, F.o, "GO:0000001");
  assert_non_null(hc);
  assert_non_null(ha);
  assert_non_null(hr);
  assert_ptr_equal(hc, enrich_feature_hits(&r1, 0, NULL));  // smallest p first
  double p1 = 1.1797175484382116e-09, p2 = 0.00021795989537925023;  // 1/C(40,10), C(20,10)/C(40,10)
  assert_true(rel(hc->p, p1) < 1e-12);
  assert_true(rel(ha->p, p2) < 1e-12);
  assert_true(rel(hc->p_bonf, 7 * p1) < 1e-12);
  assert_true(rel(hc->q_bh, 7 * p1) < 1e-12);
  assert_true(rel(ha->q_bh, p2 * 7 / 3) < 1e-12);  // A ranks 2 or 3, the larger rank's value wins
  assert_true(rel(hr->q_bh, p2 * 7 / 3) < 1e-12);
  assert_true(rel(hc->fold, 4.0) < 1e-12);
  assert_true(rel(ha->fold, 2.0) < 1e-12);
  assert_int_equal(hc->k, 10);
  assert_int_equal(hc->K, 10);
  assert_true(fabsf(hc->f1 - 1.0f) < 1e-6f);  // C's members are exactly the study set
  assert_true(fabsf(ha->f1 - (float)(2.0 * 10 / 30)) < 1e-6f);
  assert_int_equal(r1.features[0].best_f1_term, go_lookup(F.o, "GO:0000004"));
  assert_null(find_hit(&r1, 0, F.o, "GO:0000003"));  // B: not enriched (k = 0)
  // feature 1: dead
  assert_int_equal(r1.features[1].n_study, 0);
  assert_int_equal(r1.features[1].n_hits, 0);
  assert_int_equal(r1.features[1].best_f1_term, -1);
  // feature 2 with act_frac 0: study = P21..P40 = M1's members
  assert_int_equal(r1.features[2].n_study, 20);
  const enrich_hit_t *hm = find_hit(&r1, 2, F.o, "GO:0000011");
  assert_non_null(hm);
  assert_true(rel(hm->p, 1.0 / (double)choose(40, 20)) < 1e-12);
  // F1 thresholds: P21..P30 are above 0.5 x max; best F1 for M1 is at threshold 0 (all 20)
  assert_true(fabsf(hm->f1 - 1.0f) < 1e-6f);
  assert_true(hm->f1_threshold == 0.0f);
  // feature 3: active everywhere, nothing enriched
  assert_int_equal(r1.features[3].n_hits, 0);
  // the same with 2 threads
  ps_pool_t *pool = ps_pool_new(2);
  assert_int_equal(enrich_run(e, &csc, pool, &r2, &err), 0);
  assert_int_equal(r1.n_hits, r2.n_hits);
  assert_memory_equal(r1.hits, r2.hits, (size_t)r1.n_hits * sizeof *r1.hits);
  assert_memory_equal(r1.features, r2.features, (size_t)r1.n_features * sizeof *r1.features);
  enrich_results_free(&r2);
  // summaries, describe, TSV
  enrich_summary_t s;
  enrich_summarize(e, &r1, 1, 10, &s);
  assert_int_equal(s.n_features, 4);
  assert_int_equal(s.n_alive, 3);
  assert_int_equal(s.with_any, 2);
  assert_int_equal(s.with_ns[0], 1);
  assert_int_equal(s.with_ns[1], 1);
  assert_int_equal(s.with_ns[2], 0);
  assert_int_equal(s.n_sig_pairs, r1.n_hits);
  assert_int_equal(s.by_depth[0] + s.by_depth[1] + s.by_depth[2], r1.n_hits);
  assert_int_equal(s.by_depth[2], 1);  // C
  assert_int_equal(s.mono_features, 2);  // feature 0: C, A, root; feature 2: M1, MF root: all nested
  assert_true(fabs(s.mono_same_branch - 1.0) < 1e-12);
  char buf[4096];
  assert_int_equal(enrich_feature_describe(e, &r1, 0, 2, buf, sizeof buf), 2);
  assert_non_null(strstr(buf, "GO:0000004\tterm C\tBP"));
  assert_non_null(strstr(buf, "root bp"));  // ties (A, root) by term index: root first
  assert_null(strstr(buf, "term A"));
  char path[PATH_MAX + 16];
  fx_path(path, sizeof path, "out.tsv");
  assert_int_equal(enrich_write_tsv(e, &r1, path, &err), 0);
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  int lines = 0;
  char line[1024];
  while (fgets(line, sizeof line, fp)) {
    if (lines == 0) assert_int_equal(strncmp(line, "feature\tgo_id\tnamespace", 23), 0);
    static const char first[] = "0\tGO:0000004\tbiological_process\t2\tterm C\t10\t10\t10\t40\t4\t";
    if (lines == 1 && strncmp(line, first, strlen(first)) != 0) fail_msg("first line: %s", line);
    lines++;
  }
  fclose(fp);
  assert_int_equal(lines, r1.n_hits + 1);
  unlink(path);
  fx_path(path, sizeof path, "features.tsv");
  assert_int_equal(enrich_write_features_tsv(e, &r1, path, &err), 0);
  unlink(path);
  assert_true(enrich_write_tsv(e, &r1, "/nonexistent-dir/x.tsv", &err) < 0);
  assert_non_null(strstr(err.msg, "/nonexistent-dir/x.tsv"));
  enrich_results_free(&r1);
  enrich_engine_free(&e);
  assert_null(e);

  // act_frac 0.5 and Bonferroni: feature 2's study = P21..P30 (n 10 of M1's 20)
  opts.act_frac = 0.5;
  opts.correction = ENRICH_BONFERRONI;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  assert_int_equal(enrich_run(e, &csc, NULL, &r1, &err), 0);
  assert_int_equal(r1.features[2].n_study, 10);
  hm = find_hit(&r1, 2, F.o, "GO:0000011");
  assert_non_null(hm);
  assert_true(rel(hm->p, p2) < 1e-12);
  assert_int_equal(hm->k, 10);
  assert_true(rel(hm->p_bonf, 7 * p2) < 1e-12);
  assert_int_equal(r1.features[0].n_study, 5);  // values 6..10 > 0.5 x 11 (X1 holds the max)
  // max_hits
  enrich_results_free(&r1);
  enrich_engine_free(&e);
  opts.act_frac = 0;
  opts.max_hits = 1;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  assert_int_equal(enrich_run(e, &csc, NULL, &r1, &err), 0);
  assert_int_equal(r1.features[0].n_hits, 1);
  assert_int_equal(r1.hits[r1.features[0].hit0].term, go_lookup(F.o, "GO:0000004"));
  enrich_results_free(&r1);
  enrich_engine_free(&e);
  // the two-sided test keeps the same enriched terms here
  opts.max_hits = 0;
  opts.alternative = ENRICH_TWO_SIDED;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  assert_int_equal(enrich_run(e, &csc, pool, &r1, &err), 0);
  hc = find_hit(&r1, 0, F.o, "GO:0000004");
  assert_non_null(hc);
  enrich_hyper_t *h = NULL;
  assert_int_equal(enrich_hyper_new(&h, 40, NULL), 0);
  assert_true(rel(hc->ln_p, enrich_ln_two_sided(h, 10, 40, 10, 10)) < 1e-14);
  enrich_hyper_free(&h);
  enrich_results_free(&r1);
  enrich_engine_free(&e);
  ps_pool_destroy(&pool);
  gofx_free(&F);
}

static void test_errors(void **state) {
  (void)state;
  gofx_t F;
  gofx_init(&F);
  ps_err_t err = {0};
  enrich_engine_t *e = NULL;
  enrich_opts_t opts;
  enrich_opts_default(&opts);
  opts.alpha = 0;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), PS_ECONFIG);
  assert_null(e);
  enrich_opts_default(&opts);
  opts.min_size = 1000;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), PS_EMISMATCH);
  assert_non_null(strstr(err.msg, "40 of 41"));
  int64_t bad_of[2] = {0, 99};
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, bad_of, 2, NULL, &err), PS_EDIM);
  assert_non_null(strstr(err.msg, "protein 1"));
  assert_int_equal(enrich_f1_parse("0,0.5,x", &opts, &err), PS_ECONFIG);
  assert_int_equal(enrich_f1_parse("0.8,0,0.3", &opts, &err), 0);
  assert_int_equal(opts.n_f1, 3);
  assert_true(opts.f1_thresholds[0] == 0 && opts.f1_thresholds[2] == 0.8);
  assert_int_equal(enrich_f1_parse("1.5", &opts, &err), PS_ECONFIG);
  enrich_alt_t alt;
  assert_int_equal(enrich_alt_parse("sideways", &alt), PS_ECONFIG);

  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, NULL, &err), 0);
  int64_t indptr[5];
  int32_t rows[128];
  float vals[128];
  build_acts(indptr, rows, vals);
  enrich_csc_t csc = {4, 41, indptr, rows, vals};
  enrich_results_t r;
  rows[3] = 41;
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), PS_EDIM);
  assert_non_null(strstr(err.msg, "feature 0: entry 3: protein 41"));
  enrich_results_free(&r);
  rows[3] = 3;
  vals[12] = NAN;
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), PS_ENAN);
  assert_non_null(strstr(err.msg, "feature 2: entry 1"));
  vals[12] = 1;
  rows[12] = 20;  // protein 20 twice in feature 2
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), PS_EFORMAT);
  assert_non_null(strstr(err.msg, "listed twice"));
  rows[12] = 21;
  csc.n_proteins = 40;
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), PS_EDIM);
  csc.n_proteins = 41;
  indptr[2] = 3;  // decreasing
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), PS_EFORMAT);
  assert_non_null(strstr(err.msg, "feature 1"));
  enrich_engine_free(&e);
  // CSR -> CSC
  int64_t ip[4] = {0, 2, 2, 4};
  int32_t cols[4] = {1, 3, 3, 0};
  float cv[4] = {0.5f, 2, 3, 4};
  enrich_csc_buf_t b;
  assert_int_equal(enrich_csc_from_csr(&b, 3, 4, ip, cols, cv, &err), 0);
  int64_t want_ip[5] = {0, 1, 2, 2, 4};
  assert_memory_equal(b.indptr, want_ip, sizeof want_ip);
  assert_int_equal(b.rows[0], 2);
  assert_int_equal(b.rows[1], 0);
  assert_int_equal(b.rows[2], 0);
  assert_int_equal(b.rows[3], 2);
  assert_true(b.values[3] == 3);
  enrich_csc_buf_free(&b);
  cols[2] = 7;
  assert_int_equal(enrich_csc_from_csr(&b, 3, 4, ip, cols, cv, &err), PS_EDIM);
  assert_non_null(strstr(err.msg, "row 2: latent 7"));
  gofx_free(&F);
}

static void test_distance(void **state) {
  (void)state;
  gofx_t F;
  gofx_init(&F);
  const go_ontology_t *o = F.o;
  int32_t lca;
  int32_t C = go_lookup(o, "GO:0000004"), D = go_lookup(o, "GO:0000005"), A = go_lookup(o, "GO:0000002");
  int32_t B = go_lookup(o, "GO:0000003"), R = go_lookup(o, "GO:0000001"), M1 = go_lookup(o, "GO:0000011");
  assert_int_equal(enrich_term_distance(o, C, D, &lca), 2);  // via A
  assert_int_equal(lca, go_term(o, A)->depth);
  assert_int_equal(enrich_term_distance(o, C, R, &lca), 2);
  assert_int_equal(lca, 0);
  assert_int_equal(enrich_term_distance(o, D, B, &lca), 1);  // part_of
  assert_int_equal(enrich_term_distance(o, C, B, &lca), 3);  // C-A-R-B or C... B is D's parent, not C's
  assert_int_equal(enrich_term_distance(o, C, C, &lca), 0);
  assert_int_equal(lca, go_term(o, C)->depth);
  assert_int_equal(enrich_term_distance(o, C, M1, &lca), -1);
  assert_int_equal(lca, -1);
  gofx_free(&F);
}

// ---- the options of issue 18 (population, propagation, correction family, depth) ---------------
static void test_options(void **state) {
  (void)state;
  gofx_t F;
  gofx_init(&F);
  ps_err_t err = {0};
  int64_t indptr[5];
  int32_t rows[128];
  float vals[128];
  build_acts(indptr, rows, vals);
  enrich_csc_t csc = {4, 41, indptr, rows, vals};
  const double p1 = 1.1797175484382116e-09, p2 = 0.00021795989537925023;  // as test_engine
  int32_t C = go_lookup(F.o, "GO:0000004"), M1 = go_lookup(F.o, "GO:0000011");
  // population analysed: X1 (no annotation) counts: N 41, feature 0's study set P1..P10 + X1
  enrich_opts_t opts;
  enrich_opts_default(&opts);
  opts.population = ENRICH_POP_ANALYSED;
  enrich_engine_t *e = NULL;
  enrich_results_t r;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  assert_int_equal(enrich_pop_size(e), 41);
  assert_int_equal(enrich_term_pop(e, C), 10);
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), 0);
  assert_int_equal(r.pop_n, 41);
  assert_int_equal(r.features[0].n_study, 11);
  const enrich_hit_t *h = find_hit(&r, 0, F.o, "GO:0000004");
  assert_non_null(h);
  double pa = 31.0 / (double)choose(41, 11);  // P(X >= 10) = P(X = 10) = C(10,10) C(31,1) / C(41,11)
  if (rel(h->p, pa) > 1e-12) fail_msg("analysed: p %.17g, expected %.17g", h->p, pa);
  assert_int_equal(h->k, 10);
  assert_true(rel(h->fold, (10.0 / 11) / (10.0 / 41)) < 1e-12);
  enrich_results_free(&r);
  enrich_engine_free(&e);
  // -2 leaves a protein out of either population; its activation is then ignored
  int64_t of[41];
  memcpy(of, F.annot_of, sizeof of);
  of[40] = -2;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, of, 41, &opts, &err), 0);
  assert_int_equal(enrich_pop_size(e), 40);
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), 0);
  assert_int_equal(r.features[0].n_study, 10);
  assert_true(rel(find_hit(&r, 0, F.o, "GO:0000004")->p, p1) < 1e-12);
  enrich_results_free(&r);
  enrich_engine_free(&e);
  // correction per namespace: BP has 5 tested terms (R, A, B, C, D), MF 2 (M, M1)
  enrich_opts_default(&opts);
  opts.correction = ENRICH_FDR_BH;
  opts.scope = ENRICH_SCOPE_NAMESPACE;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  assert_int_equal(enrich_term_family(e, C), 5);
  assert_int_equal(enrich_term_family(e, M1), 2);
  assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), 0);
  h = find_hit(&r, 0, F.o, "GO:0000004");
  assert_true(rel(h->p_bonf, 5 * p1) < 1e-12);
  assert_true(rel(h->q_bh, 5 * p1) < 1e-12);
  assert_true(rel(find_hit(&r, 0, F.o, "GO:0000002")->q_bh, p2 * 5 / 3) < 1e-12);
  h = find_hit(&r, 2, F.o, "GO:0000011");
  double pm = 1.0 / (double)choose(40, 20);
  assert_true(rel(h->p_bonf, 2 * pm) < 1e-12);
  assert_true(rel(h->q_bh, pm) < 1e-12);  // M and M1 tie (k = K = 20): ranks 1, 2 of a family of 2 (all: 7/2 pm)
  enrich_results_free(&r);
  enrich_engine_free(&e);
  // Bonferroni at alpha = 6 p1: kept per namespace (5 p1 < alpha), not over all 7 terms (7 p1)
  enrich_opts_default(&opts);
  opts.alpha = 6 * p1;
  for (int scope = 0; scope < 2; scope++) {
    opts.scope = scope ? ENRICH_SCOPE_NAMESPACE : ENRICH_SCOPE_ALL;
    assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
    assert_int_equal(enrich_term_family(e, C), scope ? 5 : 7);
    assert_int_equal(enrich_run(e, &csc, NULL, &r, &err), 0);
    assert_int_equal(find_hit(&r, 0, F.o, "GO:0000004") != NULL, scope);
    enrich_results_free(&r);
    enrich_engine_free(&e);
  }
  // propagation over is_a only: D's proteins no longer reach B (D part_of B), so B is untested
  go_ontology_t *oi = NULL;
  go_load_opts_t lo = {GO_REL_IS_A};
  assert_int_equal(go_ontology_parse(&oi, OBO, strlen(OBO), "test.obo", &lo, &err), 0);
  go_annotations_t *ai = NULL;
  {  // the fixture's direct annotations again, propagated over is_a
    char path[PATH_MAX + 16];
    fx_path(path, sizeof path, "i.tsv");
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int p = 1; p <= 40; p++)
      fprintf(fp, "P%d\t%s\tIDA\n", p, p <= 10 ? "GO:0000004" : p <= 20 ? "GO:0000005" : "GO:0000011");
    fclose(fp);
    ai = go_annotations_new();
    assert_int_equal(go_annotations_load_tsv(ai, oi, path, NULL, NULL, &err), 0);
    unlink(path);
    go_annotations_propagate(ai, oi);
  }
  int64_t ofi[41];
  for (int p = 0; p < 41; p++) {
    char id[16];
    snprintf(id, sizeof id, "P%d", p + 1);
    ofi[p] = p < 40 ? go_annotations_find(ai, id) : -1;
  }
  assert_int_equal(enrich_engine_new(&e, oi, ai, ofi, 41, NULL, &err), 0);
  assert_int_equal(enrich_n_tested(e), 6);
  assert_int_equal(enrich_term_pop(e, go_lookup(oi, "GO:0000003")), 0);
  assert_int_equal(enrich_term_pop(e, go_lookup(oi, "GO:0000005")), 10);
  enrich_engine_free(&e);
  go_annotations_destroy(&ai);
  go_ontology_destroy(&oi);
  // depth along is_a: Z is_a R and part_of Y (Y is_a X is_a R): depth 3, is_a depth 1
  static const char *DOBO = "[Term]\nid: GO:0000001\nnamespace: biological_process\n\n"
                            "[Term]\nid: GO:0000002\nnamespace: biological_process\nis_a: GO:0000001\n\n"
                            "[Term]\nid: GO:0000003\nnamespace: biological_process\nis_a: GO:0000002\n\n"
                            "[Term]\nid: GO:0000004\nnamespace: biological_process\nis_a: GO:0000001\n"
                            "relationship: part_of GO:0000003\n";
  go_ontology_t *od = NULL;
  assert_int_equal(go_ontology_parse(&od, DOBO, strlen(DOBO), "depth.obo", NULL, &err), 0);
  int32_t Z = go_lookup(od, "GO:0000004");
  assert_int_equal(go_term(od, Z)->depth, 3);
  assert_int_equal(go_term(od, Z)->depth_is_a, 1);
  assert_int_equal(go_term(od, go_lookup(od, "GO:0000003"))->depth_is_a, 2);
  go_ontology_destroy(&od);
  // ... and the engine reports the depth of its rule (the fixture's D: depth 2 both ways; B: 1)
  enrich_opts_default(&opts);
  opts.depth = ENRICH_DEPTH_IS_A;
  assert_int_equal(enrich_engine_new(&e, F.o, F.an, F.annot_of, 41, &opts, &err), 0);
  for (int32_t t = 0; t < (int32_t)go_n_terms(F.o); t++)
    assert_int_equal(enrich_term_depth(e, t), go_term(F.o, t)->depth_is_a);
  enrich_engine_free(&e);
  gofx_free(&F);
}

// The options as configuration keys: every key reaches its field; a bad value names key and choices.
static void test_options_config(void **state) {
  (void)state;
  static const ps_config_entry_t table[] = {ENRICH_CONFIG_ENTRIES("fdr"), {NULL, NULL, NULL}};
  char *argv[] = {"x", "--enrich-population", "analysed", "--enrich-relations", "is_a", "--enrich-correction",
                  "bonferroni", "--enrich-correction-scope", "namespace", "--enrich-depth", "is_a"};
  ps_config_t *cfg = NULL;
  ps_err_t err = {0};
  enrich_opts_t o;
  unsigned rels = 0;
  assert_int_equal(ps_config_parse(&cfg, table, 1, argv, &err), 0);  // defaults
  enrich_opts_default(&o);
  o.correction = ENRICH_BONFERRONI;
  assert_int_equal(enrich_opts_config(cfg, &o, &rels, &err), 0);
  assert_int_equal(o.population, ENRICH_POP_ANNOTATED);
  assert_int_equal(rels, GO_REL_IS_A | GO_REL_PART_OF);
  assert_int_equal(o.correction, ENRICH_FDR_BH);
  assert_int_equal(o.scope, ENRICH_SCOPE_ALL);
  assert_int_equal(o.depth, ENRICH_DEPTH_RELATIONS);
  ps_config_destroy(&cfg);
  assert_int_equal(ps_config_parse(&cfg, table, 11, argv, &err), 0);
  assert_int_equal(enrich_opts_config(cfg, &o, &rels, &err), 0);
  assert_int_equal(o.population, ENRICH_POP_ANALYSED);
  assert_int_equal(rels, GO_REL_IS_A);
  assert_int_equal(o.correction, ENRICH_BONFERRONI);
  assert_int_equal(o.scope, ENRICH_SCOPE_NAMESPACE);
  assert_int_equal(o.depth, ENRICH_DEPTH_IS_A);
  assert_string_equal(enrich_pop_name(o.population), "analysed");
  assert_string_equal(enrich_rels_name(rels), "is_a");
  assert_string_equal(enrich_scope_name(o.scope), "namespace");
  assert_string_equal(enrich_depth_name(o.depth), "is_a");
  assert_string_equal(enrich_corr_name(ENRICH_FDR_BH), "fdr");
  ps_config_destroy(&cfg);
  argv[2] = "everyone";
  assert_int_equal(ps_config_parse(&cfg, table, 3, argv, &err), 0);
  assert_int_equal(enrich_opts_config(cfg, &o, &rels, &err), PS_ECONFIG);
  assert_string_equal(err.msg, "--enrich-population 'everyone': annotated | analysed");
  ps_config_destroy(&cfg);
  int k = 0;
  for (const char *const *key = enrich_config_keys; *key; key++, k++) assert_string_equal(*key, table[k].name);
  assert_int_equal(k, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bruteforce),
      cmocka_unit_test(test_known_and_extreme),
      cmocka_unit_test(test_engine),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_distance),
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_options_config),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
