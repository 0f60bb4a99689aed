// Unit tests of the synth generator's model (cli/synth/synth.h): random streams, motif matchers,
// format names, and on the real human data (../shared/data/human-swissprot via PROTSAE_SHARED)
// the loaded inputs, the plan against the annotations, the planted signal and the outlier
// dimensions. The files it writes: test_synth_files.c. Exit 77 when the data are absent (after
// the tests that need none).
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "emb.h"
#include "go.h"
#include "synth_fixture.h"

// ---- tests without data ------------------------------------------------------------------
static void test_rng(void **state) {
  (void)state;
  synth_rng_t a, b, c;
  synth_rng_init(&a, 1, SYNTH_STREAM_PROTEIN, 7);
  synth_rng_init(&b, 1, SYNTH_STREAM_PROTEIN, 7);
  synth_rng_init(&c, 1, SYNTH_STREAM_PROTEIN, 8);
  int same_c = 1;
  for (int i = 0; i < 100; i++) {
    uint64_t x = synth_rng_u64(&a), y = synth_rng_u64(&b), z = synth_rng_u64(&c);
    assert_true(x == y);
    if (x != z) same_c = 0;
  }
  assert_false(same_c);
  synth_rng_init(&a, 42, 1, 0);
  double s = 0, s2 = 0, u = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double g = synth_rng_normal(&a);
    s += g;
    s2 += g * g;
    double v = synth_rng_uniform(&a);
    assert_true(v >= 0 && v < 1);
    u += v;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  if (fabs(mean) > 0.01 || fabs(var - 1) > 0.02 || fabs(u / n - 0.5) > 0.005)
    fail_msg("normal mean %g var %g, uniform mean %g", mean, var, u / n);
  uint64_t hist[7] = {0};
  for (int i = 0; i < 70000; i++) hist[synth_rng_below(&a, 7)]++;
  for (int k = 0; k < 7; k++)
    if (hist[k] < 9400 || hist[k] > 10600) fail_msg("below(7): bucket %d has %llu of 70000", k, (unsigned long long)hist[k]);
}

static size_t scan(int m, const char *s, synth_hit_t *h) { return synth_motif_scan(m, s, strlen(s), h, 64); }

static void test_motifs(void **state) {
  (void)state;
  synth_hit_t h[64];
  // N-glycosylation N-{P}-[ST]-{P}
  assert_int_equal(scan(0, "ANASAG", h), 1);
  assert_int_equal(h[0].start, 1);
  assert_int_equal(h[0].end, 5);
  assert_int_equal(scan(0, "ANPSAG", h), 0);  // P at x
  assert_int_equal(scan(0, "ANASPG", h), 0);  // P after
  assert_int_equal(scan(0, "NGT", h), 0);     // too short for the 4th position
  assert_int_equal(scan(0, "nktl", h), 1);    // case-insensitive
  // PKC [ST]-x-[RK]
  assert_int_equal(scan(1, "GSAKG", h), 1);
  assert_int_equal(h[0].start, 1);
  assert_int_equal(h[0].end, 4);
  assert_int_equal(scan(1, "TARSGK", h), 2);  // TAR and SGK
  // CK2 [ST]-x(2)-[DE]
  assert_int_equal(scan(2, "SAAD", h), 1);
  assert_int_equal(scan(2, "SAAAD", h), 0);
  // C2H2: C-x(2,4)-C-x(3)-[LIVMFYWC]-x(8)-H-x(3,5)-H
  const char *zf = "GGCAACAAALAAAAAAAAHAAAHGG";
  assert_int_equal(scan(3, zf, h), 1);
  assert_int_equal(h[0].start, 2);
  assert_int_equal(h[0].end, 23);
  assert_int_equal(scan(3, "GGCAACAAAGAAAAAAAAHAAAHGG", h), 0);  // G not hydrophobic
  assert_int_equal(scan(3, "CAAAACAAALAAAAAAAAHAAAAAH", h), 1);  // longest spacings
  // a real zinc finger (ZNF; PROSITE PS00028 example-like)
  assert_int_equal(scan(3, "YKCEECGKAFSQSSHLIRHQRIH", h), 1);
  // transmembrane-like: >= 18 of AILMFVW in a 24-residue window (whole sequence when shorter)
  char tm[128];
  memset(tm, 'L', 18);
  tm[18] = 0;
  assert_int_equal(scan(4, tm, h), 1);
  assert_int_equal(h[0].start, 0);
  assert_int_equal(h[0].end, 18);
  tm[17] = 0;
  assert_int_equal(scan(4, tm, h), 0);
  // 30 G, then 24 residues with 18 hydrophobic (6 S spread), then 30 G: exactly one window
  snprintf(tm, sizeof tm, "%s%s%s", "GGGGGGGGGGGGGGGGGGGGGGGGGGGGGG", "LLLSLLLSLLLSLLLSLLLSLLLS",
           "GGGGGGGGGGGGGGGGGGGGGGGGGGGGGG");
  assert_int_equal(scan(4, tm, h), 1);
  assert_int_equal(h[0].start, 30);
  assert_int_equal(h[0].end, 53);  // trimmed to the last hydrophobic residue
  tm[30] = 'G';  // 17 hydrophobic left
  assert_int_equal(scan(4, tm, h), 0);
  // two helices apart: two hits; overlapping windows merge into one, trimmed
  snprintf(tm, sizeof tm, "%s%s%s", "AILMFVWAILMFVWAILMFVWAIL", "GGGGGGGGGGGGGGGGGGGG", "VVVVVVVVVVVVVVVVVVVVVVVVVV");
  assert_int_equal(scan(4, tm, h), 2);
  assert_int_equal(h[0].start, 0);
  assert_int_equal(h[0].end, 24);
  assert_int_equal(h[1].start, 44);
  assert_int_equal(h[1].end, 70);
  // cap: counts all, writes at most cap
  assert_int_equal(synth_motif_scan(1, "SAKSAKSAK", 9, h, 1), 3);
}

static void test_formats(void **state) {
  (void)state;
  unsigned m;
  ps_err_t e = {0};
  assert_int_equal(synth_parse_formats("npy,h5", &m, &e), 0);
  assert_int_equal(m, SYNTH_FMT_NPY | SYNTH_FMT_H5);
  assert_int_equal(synth_parse_formats("all", &m, &e), 0);
  assert_int_equal(m, 15);
  assert_int_equal(synth_parse_formats("none", &m, &e), 0);
  assert_int_equal(m, 0);
  assert_int_equal(synth_parse_formats("npy,parquet", &m, &e), PS_ECONFIG);
  assert_non_null(strstr(e.msg, "parquet"));
}

// ---- tests on the real data --------------------------------------------------------------
static void test_data_loaded(void **state) {
  (void)state;
  assert_int_equal(g_data.n_proteins, 17459);
  assert_int_equal(g_data.random_sequences, 0);
  assert_true(g_data.n_annotated > 17000);
  size_t total = 0;
  for (size_t i = 0; i < g_data.n_proteins; i++) {
    assert_int_equal(strlen(g_data.seqs[i]), g_data.lens[i]);
    total += g_data.lens[i];
  }
  assert_true(total > 8000000);
}

static void test_plan_truth(void **state) {
  (void)state;
  synth_opts_t o;
  small_opts(&o, "/nonexistent");
  synth_plan_t p;
  ps_err_t e = {0};
  assert_int_equal(synth_plan_build(&p, &g_data, &o, &e), 0);
  assert_int_equal(p.n_features, 50);
  assert_true(p.n_qualifying > 1000);
  const go_ontology_t *on = g_data.onto;
  // raw (unpropagated) annotations, to check membership independently of the propagation
  go_annotations_t *raw = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(raw, on, g_data.annot_path, NULL, NULL, &e), 0);
  size_t nt = go_n_terms(on);
  int32_t *anc = malloc(nt * sizeof *anc);
  uint8_t *is_member = calloc((size_t)p.n_features * g_data.n_proteins, 1);
  int32_t *feat_of = malloc(nt * sizeof *feat_of);
  for (size_t t = 0; t < nt; t++) feat_of[t] = -1;
  for (uint32_t f = 0; f < p.n_features; f++) {
    if (f) assert_true(p.feature_term[f] > p.feature_term[f - 1]);
    const go_term_t *gt = go_term(on, p.feature_term[f]);
    assert_false(gt->obsolete);
    assert_true(p.feature_size[f] >= o.min_size && p.feature_size[f] <= o.max_size);
    feat_of[p.feature_term[f]] = (int32_t)f;
    assert_float_equal(dot(p.directions + (size_t)f * o.dim, p.directions + (size_t)f * o.dim, o.dim), 1.0, 1e-5);
  }
  for (size_t i = 0; i < g_data.n_proteins; i++) {
    int64_t a = go_annotations_find(raw, g_data.ids[i]);
    if (a < 0) continue;
    for (uint32_t k = 0; k < raw->n_terms[a]; k++) {
      size_t na = go_ancestors(on, raw->terms[a][k], anc, nt);
      for (size_t q = 0; q < na; q++)
        if (feat_of[anc[q]] >= 0) is_member[(size_t)feat_of[anc[q]] * g_data.n_proteins + i] = 1;
    }
  }
  // the plan's members == proteins annotated with the term or a descendant
  uint32_t *cnt = calloc(p.n_features, sizeof *cnt);
  for (size_t i = 0; i < g_data.n_proteins; i++) {
    uint64_t k = p.prot_off[i];
    for (uint32_t f = 0; f < p.n_features; f++) {
      int planned = k < p.prot_off[i + 1] && p.prot_feat[k] == f;
      if (planned) k++;
      if (planned != is_member[(size_t)f * g_data.n_proteins + i])
        fail_msg("protein %s feature %u (%s): plan says %d, annotations say %d", g_data.ids[i], f,
                 go_term(on, p.feature_term[f])->id, planned, is_member[(size_t)f * g_data.n_proteins + i]);
      cnt[f] += (uint32_t)planned;
    }
    assert_true(k == p.prot_off[i + 1]);
  }
  for (uint32_t f = 0; f < p.n_features; f++) assert_int_equal(cnt[f], p.feature_size[f]);
  // fewer qualifying than asked: all of them
  synth_plan_t q;
  o.n_terms = 1000000;
  assert_int_equal(synth_plan_build(&q, &g_data, &o, &e), 0);
  assert_int_equal(q.n_features, q.n_qualifying);
  synth_plan_free(&q);
  // bad options are errors, not crashes
  o.min_size = 400;
  assert_int_equal(synth_plan_build(&q, &g_data, &o, &e), PS_ECONFIG);
  synth_plan_free(&q);
  free(cnt);
  free(anc);
  free(is_member);
  free(feat_of);
  go_annotations_destroy(&raw);
  synth_plan_free(&p);
}

static void test_planted_signal(void **state) {
  (void)state;
  synth_opts_t o;
  small_opts(&o, "/nonexistent");
  o.dim = 128;
  synth_plan_t p;
  ps_err_t e = {0};
  assert_int_equal(synth_plan_build(&p, &g_data, &o, &e), 0);
  size_t np = g_data.n_proteins, d = o.dim;
  float *x = malloc(d * sizeof *x);
  double *proj = malloc(np * p.n_features * sizeof *proj);
  for (size_t i = 0; i < np; i++) {
    synth_protein_vector(&p, i, x, NULL, NULL, NULL);
    for (size_t j = 0; j < d; j++) x[j] -= p.mu[j];
    for (uint32_t f = 0; f < p.n_features; f++) proj[i * p.n_features + f] = dot(x, p.directions + f * d, d);
  }
  uint32_t weak = 0;
  for (uint32_t f = 0; f < p.n_features; f++) {
    double sm = 0, sn = 0, sn2 = 0;
    size_t nm = 0, nn = 0;
    for (size_t i = 0; i < np; i++) {
      int mem = 0;
      for (uint64_t k = p.prot_off[i]; k < p.prot_off[i + 1]; k++) mem |= p.prot_feat[k] == f;
      double v = proj[i * p.n_features + f];
      if (mem) sm += v, nm++;
      else sn += v, sn2 += v * v, nn++;
    }
    double mm = sm / nm, mn = sn / nn, sd = sqrt(sn2 / nn - mn * mn);
    // members sit about feature_scale above non-members, far outside their spread
    if (mm - mn < 0.6 * o.feature_scale) fail_msg("feature %u: member mean %g, non-member mean %g", f, mm, mn);
    if ((mm - mn) / sd < 3) weak++;
  }
  assert_int_equal(weak, 0);
  free(x);
  free(proj);
  synth_plan_free(&p);
}

static void test_outliers(void **state) {
  (void)state;
  synth_opts_t o;
  small_opts(&o, "/nonexistent");
  synth_plan_t p;
  ps_err_t e = {0};
  assert_int_equal(synth_plan_build(&p, &g_data, &o, &e), 0);
  float *x = malloc(o.dim * sizeof *x);
  for (uint32_t k = 0; k < o.n_outliers; k++) {
    assert_true(fabsf(p.outlier_values[k]) >= 0.75f * (float)o.outlier_scale - 1e-3f);
    if (k) assert_true(p.outlier_dims[k] > p.outlier_dims[k - 1]);
  }
  double max_other = 0;
  for (size_t i = 0; i < g_data.n_proteins; i += 7) {
    synth_protein_vector(&p, i, x, NULL, NULL, NULL);
    for (uint32_t j = 0, k = 0; j < o.dim; j++) {
      double v = fabs((double)x[j] - p.mu[j]);
      if (k < o.n_outliers && p.outlier_dims[k] == j) {
        if (v < 10) fail_msg("protein %zu: outlier dim %u has |x - mu| = %g", i, j, v);
        k++;
      } else if (v > max_other) {
        max_other = v;
      }
    }
  }
  assert_true(max_other < 5);
  free(x);
  synth_plan_free(&p);
}

// synth_data_extend: planted sets larger than the input. Extra proteins take the term sets of
// input proteins (the same features as their source), their own noise, and every planted term's
// size grows with the set while the qualifying terms stay those of the input.
static void test_extend(void **state) {
  (void)state;
  synth_data_t d;
  char dir[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/" SX_DATA, fx_shared_dir);
  ps_err_t e = {0};
  assert_int_equal(synth_data_load(&d, dir, &e), 0);
  const size_t n0 = d.n_proteins;
  assert_int_equal(d.n_input, n0);
  assert_int_equal(synth_data_extend(&d, n0, 1, &e), PS_ECONFIG);  // not larger: refused
  assert_non_null(strstr(e.msg, "--n-proteins"));
  synth_opts_t o;
  small_opts(&o, "/nonexistent");
  synth_plan_t p0, p1;
  assert_int_equal(synth_plan_build(&p0, &d, &o, &e), 0);
  assert_int_equal(synth_data_extend(&d, 3 * n0, o.seed, &e), 0);
  assert_int_equal(d.n_proteins, 3 * n0);
  assert_int_equal(synth_plan_build(&p1, &d, &o, &e), 0);
  assert_int_equal(p1.n_proteins, 3 * n0);
  assert_int_equal(p1.n_features, p0.n_features);
  assert_memory_equal(p1.feature_term, p0.feature_term, p0.n_features * sizeof *p0.feature_term);
  // the first n0 proteins are unchanged
  assert_memory_equal(p1.prot_off, p0.prot_off, (n0 + 1) * sizeof *p0.prot_off);
  uint64_t s0 = 0, s1 = 0;
  for (uint32_t f = 0; f < p0.n_features; f++) {
    s0 += p0.feature_size[f];
    s1 += p1.feature_size[f];
    assert_true(p1.feature_size[f] >= p0.feature_size[f]);
  }
  assert_true(s1 > 2.7 * s0 && s1 < 3.3 * s0);  // sizes scale with the set
  uint64_t members = 0;
  for (size_t i = 0; i < p1.n_proteins; i++) members += p1.prot_off[i + 1] - p1.prot_off[i];
  assert_int_equal(members, s1);
  float *x = malloc(o.dim * sizeof *x), *y = malloc(o.dim * sizeof *y);
  size_t checked = 0;
  for (size_t i = n0; i < 3 * n0; i += 997) {
    // id "<source>_x<i>"; the source's features, the source's sequence, its own vector
    char want[64];
    snprintf(want, sizeof want, "_x%zu", i);
    size_t L = strlen(d.ids[i]), W = strlen(want);
    assert_true(L > W && !strcmp(d.ids[i] + L - W, want));
    size_t src = n0;
    for (size_t j = 0; j < n0 && src == n0; j++)
      if (strlen(d.ids[j]) == L - W && !strncmp(d.ids[j], d.ids[i], L - W)) src = j;
    assert_true(src < n0);
    assert_ptr_equal(d.seqs[i], d.seqs[src]);
    uint64_t ni = p1.prot_off[i + 1] - p1.prot_off[i], ns = p1.prot_off[src + 1] - p1.prot_off[src];
    assert_int_equal(ni, ns);
    assert_memory_equal(p1.prot_feat + p1.prot_off[i], p1.prot_feat + p1.prot_off[src], ni * sizeof *p1.prot_feat);
    synth_protein_vector(&p1, i, x, NULL, NULL, NULL);
    synth_protein_vector(&p1, src, y, NULL, NULL, NULL);
    double diff = 0;
    for (uint32_t j = 0; j < o.dim; j++) diff += fabs((double)x[j] - y[j]);
    assert_true(diff > 0.01 * o.dim);  // fresh noise (0.03 sd a dimension)
    checked++;
  }
  assert_true(checked > 30);
  free(x);
  free(y);
  synth_plan_free(&p0);
  synth_plan_free(&p1);
  synth_data_free(&d);
}

int main(void) {
  const struct CMUnitTest pure[] = {
      cmocka_unit_test(test_rng),
      cmocka_unit_test(test_motifs),
      cmocka_unit_test(test_formats),
  };
  int rc = cmocka_run_group_tests_name("synth_pure", pure, NULL, NULL);
  if (rc) return rc;
  if (!sx_have_data()) return 77;
  const struct CMUnitTest data[] = {
      cmocka_unit_test(test_data_loaded),
      cmocka_unit_test(test_plan_truth),
      cmocka_unit_test(test_planted_signal),
      cmocka_unit_test(test_outliers),
      cmocka_unit_test(test_extend),
  };
  return cmocka_run_group_tests_name("synth_data", data, sx_setup, sx_teardown);
}
