// test_interp_protocol — the interpretation protocol: sampling across activation bins (quotas,
// spill-over, inactive proteins, the seeded split), the answer parsers, Pearson r and its p-value,
// the hypergeometric tail, the offline explainer end to end, and the LLM path end to end against
// the local test server playing a model (including answers that must be recorded as failures).
// With "--pearson" it is the driver of pearson_scipy.py: reads "n x.. y.." lines, prints "r p".
// With "--hypergeom" it reads "k N K n" lines and prints the upper tail.
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "db.h"
#include "fixture.h"
#include "llm.h"
#include "llm_test_server.h"
#include "offline.h"
#include "protocol.h"

// ---- sampling -------------------------------------------------------------------------------
static void count_bins(const ps_sample_t *s, size_t cnt[6]) {
  memset(cnt, 0, 6 * sizeof *cnt);
  for (size_t i = 0; i < s->n_shown; i++) cnt[s->shown_bin[i]]++;
  for (size_t i = 0; i < s->n_held; i++) cnt[s->held_bin[i]]++;
}

static void test_sampling(void **state) {
  (void)state;
  enum { N = 1000 };
  float *act = malloc(N * sizeof *act), *copy = malloc(N * sizeof *copy);
  // 200 active proteins spread evenly over (0, 1], 800 inactive
  for (int i = 0; i < N; i++) act[i] = i < 200 ? (float)(i + 1) / 200.0f : 0.0f;
  interp_opts_t o;
  interp_opts_default(&o);
  ps_sample_t s, s2;
  char why[128];
  memcpy(copy, act, N * sizeof *act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 7, &s, why, sizeof why), 1);
  assert_int_equal(s.n_active, 200);
  assert_int_equal(s.n_shown + s.n_held, 32);
  assert_int_equal(s.n_shown, 16);
  assert_int_equal(s.n_held, 16);
  size_t cnt[6];
  count_bins(&s, cnt);
  assert_int_equal(cnt[0], 6);
  assert_int_equal(cnt[1], 3);
  assert_int_equal(cnt[2], 3);
  assert_int_equal(cnt[3], 3);
  assert_int_equal(cnt[4], 2);
  assert_int_equal(cnt[5], 15);
  // both halves get actives and inactives; activations match bins; shown sorted descending
  size_t sh_act = 0, he_act = 0;
  for (size_t i = 0; i < s.n_shown; i++) {
    sh_act += s.shown_bin[i] < 5;
    if (i) assert_true(s.shown_act[i] <= s.shown_act[i - 1]);
    if (s.shown_bin[i] == 0) assert_true(s.shown_act[i] > 0.8f);
    if (s.shown_bin[i] == 5) assert_true(s.shown_act[i] == 0.0f);
    assert_true(fabsf(s.shown_act[i] - act[s.shown[i]]) < 1e-6f);  // scaled (min 0, max 1)
  }
  for (size_t i = 0; i < s.n_held; i++) he_act += s.held_bin[i] < 5;
  assert_true(sh_act >= 8 && sh_act <= 9);
  assert_true(he_act >= 8 && he_act <= 9);
  // no protein twice
  for (size_t i = 0; i < s.n_shown; i++)
    for (size_t j = 0; j < s.n_held; j++) assert_true(s.shown[i] != s.held[j]);
  // deterministic per (seed, unit); another seed -> another sample
  memcpy(copy, act, N * sizeof *act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 7, &s2, why, sizeof why), 1);
  assert_memory_equal(s.held, s2.held, s.n_held * sizeof *s.held);
  ps_sample_free(&s2);
  o.sample.seed = 2;
  memcpy(copy, act, N * sizeof *act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 7, &s2, why, sizeof why), 1);
  assert_true(memcmp(s.held, s2.held, s.n_held * sizeof *s.held) != 0);
  ps_sample_free(&s2);
  ps_sample_free(&s);
  o.sample.seed = 1;
  // spill-over: the top bin holds only 2 proteins -> the next bin down gives 3 + 4
  for (int i = 0; i < N; i++) act[i] = 0;
  act[0] = 1.0f;
  act[1] = 0.9f;
  for (int i = 2; i < 60; i++) act[i] = 0.7f - 0.001f * (float)i;   // bin 1 (0.6, 0.8]
  for (int i = 60; i < 100; i++) act[i] = 0.1f;                      // bin 4
  memcpy(copy, act, N * sizeof *act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 1, &s, why, sizeof why), 1);
  count_bins(&s, cnt);
  assert_int_equal(cnt[0], 2);
  assert_int_equal(cnt[1], 7);   // 3 + 4 spilled from bin 0
  assert_int_equal(cnt[2], 0);
  assert_int_equal(cnt[3], 0);
  assert_int_equal(cnt[4], 8);   // 2 + 6 spilled on through the empty bins 2 and 3
  assert_int_equal(cnt[5], 15);
  ps_sample_free(&s);
  // spill back up: bins 3 and 4 empty -> taken from the bins above
  for (int i = 0; i < N; i++) act[i] = i < 40 ? 0.5f + 0.01f * (float)i : 0.0f;  // 0.5..0.89
  act[0] = 0.0f;
  memcpy(copy, act, N * sizeof *act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 1, &s, why, sizeof why), 1);
  count_bins(&s, cnt);
  assert_int_equal(cnt[0] + cnt[1] + cnt[2] + cnt[3] + cnt[4], 17);
  assert_int_equal(cnt[3] + cnt[4], 0);
  ps_sample_free(&s);
  // too few active proteins; constant; ReLU for neurons
  for (int i = 0; i < N; i++) act[i] = i < 33 ? 1.0f + (float)i : 0.0f;
  memcpy(copy, act, N * sizeof *act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 1, &s, why, sizeof why), 0);
  assert_non_null(strstr(why, "too few"));
  for (int i = 0; i < N; i++) copy[i] = 3.0f;
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 1, &s, why, sizeof why), 0);
  assert_non_null(strstr(why, "constant"));
  for (int i = 0; i < N; i++) copy[i] = i < 100 ? (float)i : -5.0f;  // negatives -> 0 under ReLU
  o.sample.relu = 1;
  assert_int_equal(ps_sample_unit(&o.sample, copy, N, 1, &s, why, sizeof why), 1);
  assert_int_equal(s.n_active, 99);
  for (size_t i = 0; i < s.n_held; i++)
    if (s.held_bin[i] == 5) assert_true(s.held_act[i] == 0.0f);
  ps_sample_free(&s);
  assert_int_equal(ps_sample_parse_bins("6,3,3,3,2", o.sample.bins), 0);
  assert_int_equal(ps_sample_parse_bins("1,2,3,4,5", o.sample.bins), 0);
  assert_int_equal(o.sample.bins[4], 5);
  assert_true(ps_sample_parse_bins("1,2,3,4", o.sample.bins) < 0);
  assert_true(ps_sample_parse_bins("1,2,3,4,5,6", o.sample.bins) < 0);
  assert_true(ps_sample_parse_bins("1,x,3,4,5", o.sample.bins) < 0);
  free(act);
  free(copy);
}

// ---- parsers ---------------------------------------------------------------------------------
static int parse(const char *t, size_t m, const char *const *acc, double *out, char *why) {
  return interp_parse_predictions(t, strlen(t), m, acc, out, why, 160);
}

static void test_parse_predictions(void **state) {
  (void)state;
  double v[4];
  char why[160];
  const char *acc[4] = {"P12345", "Q9Y6K9", "O00001", "A0A183"};
  assert_int_equal(parse("1: 0.1\n2: 0.2\n3: 0.3\n4: 1", 4, acc, v, why), 0);
  assert_true(v[0] == 0.1 && v[1] == 0.2 && v[2] == 0.3 && v[3] == 1.0);
  // other shapes of the same answer
  assert_int_equal(parse("Here are my predictions:\n\n1. 0.9\n2) 0.8\n- 3 - .5\n**4**: 0%\nDone.", 4, acc, v, why), 0);
  assert_true(v[0] == 0.9 && v[1] == 0.8 && v[2] == 0.5 && v[3] == 0.0);
  assert_int_equal(parse("Protein 2: 0.2\nProtein 1: 0.1\nProtein 4: 0.4\nProtein 3: 0.3\n", 4, acc, v, why), 0);
  assert_true(v[0] == 0.1 && v[3] == 0.4);
  assert_int_equal(parse("1. P12345 (ABC1, kinase 2): 0.75\n2. Q9Y6K9: 0.25\n3. O00001 -> 0\n4. A0A183 = 1.0", 4, acc, v, why), 0);
  assert_true(v[0] == 0.75 && v[1] == 0.25 && v[2] == 0 && v[3] == 1);
  assert_int_equal(parse("A0A183: 0.4\nP12345: 0.1\nO00001: 0.3\nQ9Y6K9: 0.2", 4, acc, v, why), 0);
  assert_true(v[0] == 0.1 && v[1] == 0.2 && v[2] == 0.3 && v[3] == 0.4);
  assert_int_equal(parse("[0.1, 0.2, 0.3, 0.4]", 4, acc, v, why), 0);
  assert_true(v[2] == 0.3);
  assert_int_equal(parse("0.1\n0.2\n0.3\n0.4\n", 4, NULL, v, why), 0);
  assert_true(v[3] == 0.4);
  assert_int_equal(parse("1: 50%\n2: 0.2\n3: 0.3\n4: 0.4", 4, NULL, v, why), 0);
  assert_true(v[0] == 0.5);
  assert_int_equal(parse("1: 0.1\n1: 0.1\n2: 0.2\n3: 0.3\n4: 0.4", 4, NULL, v, why), 0);  // an identical repeat
  // failures, each with a reason
  const char *bad[] = {
      "",
      "I cannot predict these activations.",
      "1: 0.1\n2: 0.2\n3: 0.3",                   // wrong count
      "1: 0.1\n2: 0.2\n3: 0.3\n4: 0.4\n5: 0.5",   // index out of range
      "1: 0.1\n2: 0.2\n3: 1.3\n4: 0.4",           // out of [0, 1]
      "1: 0.1\n2: 0.2\n3: -0.3\n4: 0.4",
      "1: 0.1\n1: 0.9\n3: 0.3\n4: 0.4",           // contradictory duplicate
      "0: 0.5\n1: 0.1\n2: 0.2\n3: 0.3",
      "0.1 0.2 0.3",                              // three bare numbers for four proteins
      "1: nan\n2: 0.2\n3: 0.3\n4: 0.4",
      "1: 1e999\n2: 0.2\n3: 0.3\n4: 0.4",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    why[0] = 0;
    int rc = parse(bad[i], 4, acc, v, why);
    if (rc != PS_EFORMAT) fprintf(stderr, "accepted: '%s'\n", bad[i]);
    assert_int_equal(rc, PS_EFORMAT);
    assert_true(why[0] != 0);
  }
  // not NUL-terminated: only len bytes are read
  const char buf[] = {'1', ':', ' ', '0', '.', '5'};
  assert_int_equal(interp_parse_predictions(buf, sizeof buf, 1, NULL, v, why, sizeof why), 0);
  assert_true(v[0] == 0.5);
}

static void test_parse_explanation(void **state) {
  (void)state;
  char *e = NULL, why[100];
  assert_int_equal(interp_parse_explanation("\n\n  **Explanation:** \"The feature detects zinc fingers.\"  \nMore.", &e, why, sizeof why), 0);
  assert_string_equal(e, "The feature detects zinc fingers.");
  free(e);
  assert_int_equal(interp_parse_explanation("Kinases.", &e, why, sizeof why), 0);
  assert_string_equal(e, "Kinases.");
  free(e);
  assert_true(interp_parse_explanation("  \n\t\n", &e, why, sizeof why) < 0);
  assert_null(e);
  assert_true(interp_parse_explanation("** \"\" **", &e, why, sizeof why) < 0);
  char *longs = malloc(3000);
  memset(longs, 'x', 2999);
  longs[2999] = 0;
  assert_int_equal(interp_parse_explanation(longs, &e, why, sizeof why), 0);
  assert_int_equal(strlen(e), 1000);
  free(e);
  free(longs);
}

// ---- statistics ------------------------------------------------------------------------------
static void test_pearson(void **state) {
  (void)state;
  double x[5] = {1, 2, 3, 4, 5}, y[5] = {2, 4, 6, 8, 10}, z[5] = {5, 4, 3, 2, 1}, c[5] = {1, 1, 1, 1, 1};
  double r, p;
  assert_int_equal(interp_pearson(x, y, 5, &r, &p), 0);
  assert_true(fabs(r - 1) < 1e-12 && p == 0);
  assert_int_equal(interp_pearson(x, z, 5, &r, &p), 0);
  assert_true(fabs(r + 1) < 1e-12);
  assert_int_equal(interp_pearson(x, c, 5, &r, &p), PS_ENAN);
  assert_int_equal(interp_pearson(x, y, 2, &r, &p), PS_EDIM);
  // scipy.stats.pearsonr([1,2,3,4,5,6],[2,1,4,3,7,5]) = (0.7917946548886294, 0.06051140336275671)
  double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {2, 1, 4, 3, 7, 5};
  assert_int_equal(interp_pearson(a, b, 6, &r, &p), 0);
  printf("r %.15f p %.15f\n", r, p);
  assert_true(fabs(r - 0.7917946548886294) < 1e-12);
  assert_true(fabs(p - 0.06051140336275671) < 1e-10);
  // I_x(a, b): I_0.5(2, 2) = 0.5; I_0.3(1, 1) = 0.3; I_x(a,1) = x^a
  assert_true(fabs(interp_betai(2, 2, 0.5) - 0.5) < 1e-12);
  assert_true(fabs(interp_betai(1, 1, 0.3) - 0.3) < 1e-12);
  assert_true(fabs(interp_betai(3.5, 1, 0.7) - pow(0.7, 3.5)) < 1e-12);
  // hypergeometric tail: N=50, K=10, n=10: P(X>=5) from scipy.stats.hypergeom.sf(4, 50, 10, 10)
  double h = offline_hypergeom_sf(5, 50, 10, 10);
  printf("hypergeom %.15g\n", h);
  assert_true(fabs(h - 0.01812947565457138) < 1e-10);
  assert_true(offline_hypergeom_sf(0, 50, 10, 10) == 1);
  assert_true(offline_hypergeom_sf(11, 50, 10, 10) == 0);
}

// ---- end to end --------------------------------------------------------------------------------
// 600 proteins: every third has Pfam PF00096 and a ZNF gene; feature 0 fires on exactly those
// (activation graded), feature 1 on random proteins (uninterpretable), feature 2 on too few.
enum { NP = 600, NU = 3 };
typedef struct toy {
  float act[NU][NP];
  char *ids[NP];
} toy_t;

static int toy_column(void *ctx, size_t unit, float *out, ps_err_t *err) {
  (void)err;
  toy_t *t = ctx;
  memcpy(out, t->act[unit], NP * sizeof *out);
  return 0;
}

static interp_db_t *toy_db(toy_t *t, interp_source_t *src) {
  interp_db_t *db = interp_db_new();
  uint64_t rs = 12345;
  for (int i = 0; i < NP; i++) {
    char acc[16], gene[16];
    snprintf(acc, sizeof acc, "P%05d", i);
    t->ids[i] = strdup(acc);
    int zf = i % 3 == 0;
    snprintf(gene, sizeof gene, zf ? "ZNF%d" : "GENE%c%d", zf ? i : 'A' + i % 26, i);
    if (!zf) snprintf(gene, sizeof gene, "G%c%c%d", 'A' + i % 26, 'A' + (i / 26) % 26, i);
    interp_db_add(db, acc, gene, zf ? "zinc finger protein" : "some protein", zf ? "PF00096;PF01352" : (i % 5 ? "PF00001" : NULL));
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    t->act[0][i] = zf ? 0.2f + (float)(rs >> 40) / (float)(1 << 24) : 0.0f;
    t->act[1][i] = (rs >> 20) % 5 == 0 ? (float)((rs >> 30) % 100) / 10.0f : 0.0f;
    t->act[2][i] = i < 10 ? 1.0f : 0.0f;
  }
  src->n_proteins = NP;
  src->n_units = NU;
  src->protein_ids = (const char *const *)t->ids;
  src->column = toy_column;
  src->ctx = t;
  return db;
}

static void test_offline_end_to_end(void **state) {
  (void)state;
  toy_t *t = calloc(1, sizeof *t);
  interp_source_t src;
  interp_db_t *db = toy_db(t, &src);
  interp_opts_t o;
  interp_opts_default(&o);
  o.n_units = 0;
  interp_run_opts_t ro = {NULL, 1};
  interp_result_t *res = NULL;
  size_t n = 0;
  interp_summary_t sum;
  ps_err_t err = {0, {0}};
  assert_int_equal(interp_run(&src, db, &o, &ro, &res, &n, &sum, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(sum.n_too_few, 1);
  assert_int_equal(sum.n_scored, 2);
  interp_result_t *f0 = res[0].unit == 0 ? &res[0] : &res[1], *f1 = res[0].unit == 0 ? &res[1] : &res[0];
  printf("offline unit 0: r %.3f p %.3g: %s\n", f0->r, f0->p, f0->explanation);
  printf("offline unit 1: r %.3f p %.3g: %s\n", f1->r, f1->p, f1->explanation);
  assert_non_null(strstr(f0->explanation, "[offline]"));
  assert_non_null(strstr(f0->explanation, "PF00096"));
  assert_non_null(strstr(f0->explanation, "ZNF"));
  assert_true(f0->r > 0.7 && f0->p < 0.05);
  assert_true(f1->r < 0.6);
  // JSONL: every line says offline
  char path[PATH_MAX];
  fx_path(path, sizeof path, "offline.jsonl");
  assert_int_equal(interp_write_jsonl(path, &o, &src, res, n, "offline", 1, &err), 0);
  FILE *f = fopen(path, "r");
  char line[1 << 14];
  int lines = 0;
  while (fgets(line, sizeof line, f)) {
    lines++;
    assert_non_null(strstr(line, "\"offline\":true"));
    assert_non_null(strstr(line, "\"r\":"));
  }
  fclose(f);
  unlink(path);
  assert_int_equal(lines, 2);
  interp_results_free(res, n);
  // a subset of units: seeded choice among the eligible ones
  o.n_units = 1;
  assert_int_equal(interp_run(&src, db, &o, &ro, &res, &n, &sum, &err), 0);
  assert_int_equal(n, 1);
  interp_results_free(res, n);
  interp_db_destroy(&db);
  for (int i = 0; i < NP; i++) free(t->ids[i]);
  free(t);
}

// A "model" for the test server: explains with the Pfam family most common among the shown
// proteins with activation > 0.5; predicts 0.9 for held-out lines that mention PF00096.
// Prompts of unit 1 get junk answers (recorded failures).
static char *fake_model(const char *prompt, void *ud) {
  (void)ud;
  if (strstr(prompt, "In one sentence")) {
    // zinc fingers when every shown protein with activation > 0 has PF00096
    int all = 1, any = 0;
    for (const char *p = strstr(prompt, "\n1. "); p; p = strstr(p + 1, "\n")) {
      const char *e = strchr(p + 1, '\n');
      size_t l = e ? (size_t)(e - p) : strlen(p);
      char line[4096];
      snprintf(line, sizeof line, "%.*s", (int)(l < 4095 ? l : 4095), p);
      const char *a = strstr(line, "activation: ");
      if (!a || atof(a + 12) <= 0) continue;
      any = 1;
      all &= strstr(line, "PF00096") != NULL;
    }
    if (any && all) return strdup("Explanation: proteins with the Pfam family PF00096 (zinc fingers).");
    return strdup("It detects proteins with PF99999.");
  }
  size_t m = 0;
  char *out = calloc(1, 1 << 16);
  if (strstr(prompt, "PF99999")) {
    strcpy(out, "I am not sure, sorry.");
    return out;
  }
  const char *p = strstr(prompt, "\n1. ");
  while (p) {
    const char *e = strchr(p + 1, '\n');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    char line[4096];
    snprintf(line, sizeof line, "%.*s", (int)(l < 4095 ? l : 4095), p + 1);
    m++;
    sprintf(out + strlen(out), "%zu: %s\n", m, strstr(line, "PF00096") ? "0.9" : "0.05");
    char next[32];
    snprintf(next, sizeof next, "\n%zu. ", m + 1);
    p = strstr(p + 1, next);
  }
  return out;
}

static void test_llm_end_to_end(void **state) {
  (void)state;
  llm_test_server_t *srv = llm_test_server_start("k-123456789");
  assert_non_null(srv);
  llm_test_server_set_reply(srv, fake_model, NULL);
  toy_t *t = calloc(1, sizeof *t);
  interp_source_t src;
  interp_db_t *db = toy_db(t, &src);
  llm_opts_t lo;
  llm_opts_default(&lo);
  lo.base_url = llm_test_server_url(srv);
  lo.model = "fake";
  lo.api_key = "k-123456789";
  lo.backoff_base_ms = 20;
  lo.timeout_ms = 5000;
  llm_client_t *c = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_client_new(&c, &lo, NULL, &err), 0);
  interp_opts_t o;
  interp_opts_default(&o);
  o.n_units = 0;
  interp_run_opts_t ro = {c, 0};
  interp_result_t *res = NULL;
  size_t n = 0;
  interp_summary_t sum;
  assert_int_equal(interp_run(&src, db, &o, &ro, &res, &n, &sum, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(llm_test_server_n_requests(srv), 4);  // two calls per unit
  interp_result_t *f0 = res[0].unit == 0 ? &res[0] : &res[1], *f1 = res[0].unit == 0 ? &res[1] : &res[0];
  printf("llm unit 0: r %.3f: %s | failure '%s'\n", f0->r, f0->explanation, f0->failure);
  printf("llm unit 1: failure '%s'\n", f1->failure);
  assert_string_equal(f0->explanation, "proteins with the Pfam family PF00096 (zinc fingers).");
  assert_true(f0->scored && f0->r > 0.7);
  assert_false(f1->scored);
  assert_non_null(strstr(f1->failure, "predict answer"));
  assert_int_equal(sum.n_scored, 1);
  assert_int_equal(sum.n_failed, 1);
  // the prompts: call 1 carries activations, call 2 none (and no true values)
  for (size_t i = 0; i < 4; i++) {
    llm_test_request_t r;
    llm_test_server_get(srv, i, &r);
    if (strstr(r.prompt, "In one sentence")) {
      assert_non_null(strstr(r.prompt, "activation: "));
      assert_non_null(strstr(r.prompt, "| Pfam: "));
    } else {
      assert_null(strstr(r.prompt, "activation: "));
      assert_non_null(strstr(r.prompt, "explained as follows"));
    }
  }
  interp_results_free(res, n);
  llm_client_destroy(&c);
  interp_db_destroy(&db);
  for (int i = 0; i < NP; i++) free(t->ids[i]);
  free(t);
  llm_test_server_stop(&srv);
}

// The protsae-interpreter process against the test server: kill -9 during the run, rerun, and
// check that no answered request is paid twice, the output is complete, and the key is in no
// output file and no log line.
static pid_t spawn(const char *bin, const char *url, const char *dir, const char *log) {
  char base[256], feat[PATH_MAX + 16], ids[PATH_MAX + 16], data[PATH_MAX + 16], out[PATH_MAX + 16];
  snprintf(base, sizeof base, "%s/v1", url);
  snprintf(feat, sizeof feat, "%s/feat.npy", dir);
  snprintf(ids, sizeof ids, "%s/ids.txt", dir);
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    FILE *f = freopen(log, "a", stderr);
    (void)f;
    if (!freopen("/dev/null", "w", stdout)) _exit(126);
    setenv("OPENAI_API_KEY", "k-123456789-PROCESS-SECRET", 1);
    execl(bin, bin, "--mode", "openai", "--base-url", base, "--model", "fake", "--features", feat, "--ids", ids,
          "--data", data, "--out", out, "--n-features", "0", "--parallel", "1", "--rpm", "0", "--timeout-ms", "5000",
          (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void test_process_kill9_rerun(void **state) {
  (void)state;
  char bin[512];
  if (!fx_stage_bin("interpreter", bin, sizeof bin)) skip();
  char dir[PATH_MAX];
  fx_path(dir, sizeof dir, "proc");
  assert_int_equal(mkdir(dir, 0700), 0);
  toy_t *t = calloc(1, sizeof *t);
  interp_source_t src;
  interp_db_t *db = toy_db(t, &src);
  char path[PATH_MAX + 64], log[PATH_MAX + 16];
  // data dir: proteins.tsv only (no GO); ids; a (600, 3) float32 .npy
  snprintf(path, sizeof path, "%s/data", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/data/proteins.tsv", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "accession\tgene\tname\tpfam\tlength\n");
  for (size_t i = 0; i < db->n; i++) {
    fprintf(f, "%s\t%s\t%s\t", db->p[i].accession, db->p[i].gene, db->p[i].name);
    for (uint32_t k = 0; k < db->p[i].n_pfam; k++) fprintf(f, "%s%s", k ? ";" : "", db->pfam_names[db->p[i].pfam[k]]);
    fprintf(f, "\t100\n");
  }
  fclose(f);
  snprintf(path, sizeof path, "%s/ids.txt", dir);
  f = fopen(path, "w");
  for (int i = 0; i < NP; i++) fprintf(f, "%s\n", t->ids[i]);
  fclose(f);
  snprintf(path, sizeof path, "%s/feat.npy", dir);
  f = fopen(path, "wb");
  char hdr[128];
  memset(hdr, ' ', sizeof hdr);
  int hl = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", NP, NU);
  hdr[10 + hl] = ' ';
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  hdr[8] = (char)(128 - 10);
  hdr[9] = 0;
  hdr[127] = '\n';
  fwrite(hdr, 1, 128, f);
  for (int i = 0; i < NP; i++)
    for (int u = 0; u < NU; u++) fwrite(&t->act[u][i], 4, 1, f);
  fclose(f);
  snprintf(log, sizeof log, "%s/run.log", dir);
  llm_test_server_t *srv = llm_test_server_start("k-123456789-PROCESS-SECRET");
  assert_non_null(srv);
  llm_test_server_set_reply(srv, fake_model, NULL);
  llm_test_server_set_delay_ms(srv, 150);
  // run 1: killed when the third request (the first call 2) arrives
  pid_t pid = spawn(bin, llm_test_server_url(srv), dir, log);
  double t0 = llm_test_now();
  while (llm_test_server_n_requests(srv) < 3 && llm_test_now() - t0 < 20) usleep(2000);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFSIGNALED(st));
  usleep(300000);
  size_t n1 = llm_test_server_n_requests(srv);
  assert_true(n1 >= 3 && n1 <= 4);
  // what the killed process had stored
  snprintf(path, sizeof path, "%s/out/llm-cache", dir);
  llm_cache_t *cache = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_cache_open(&cache, path, &err), 0);
  size_t stored = llm_cache_count(cache);
  llm_cache_destroy(&cache);
  assert_true(stored == n1 - 1 || stored == n1);
  llm_test_request_t r;
  char *asked1[4];
  for (size_t i = 0; i < n1; i++) {
    assert_int_equal(llm_test_server_get(srv, i, &r), 0);
    asked1[i] = r.prompt;
  }
  assert_non_null(strstr(asked1[0], "In one sentence"));
  assert_non_null(strstr(asked1[1], "In one sentence"));
  assert_non_null(strstr(asked1[2], "explained as follows"));
  // run 2: finishes, asking only for what was not stored
  pid = spawn(bin, llm_test_server_url(srv), dir, log);
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  size_t n2 = llm_test_server_n_requests(srv);
  printf("process: killed after %zu requests (%zu stored); the rerun sent %zu (4 in all needed)\n", n1, stored, n2 - n1);
  assert_int_equal(n2 - n1, 4 - stored);
  for (size_t i = n1; i < n2; i++) {
    assert_int_equal(llm_test_server_get(srv, i, &r), 0);
    for (size_t k = 0; k < stored; k++) assert_string_not_equal(r.prompt, asked1[k]);
  }
  for (size_t k = 0; k < stored; k++) assert_int_equal(llm_test_server_count(srv, asked1[k], 1), 1);
  snprintf(path, sizeof path, "%s/out/features.jsonl", dir);
  f = fopen(path, "r");
  assert_non_null(f);
  char line[1 << 14];
  int lines = 0;
  while (fgets(line, sizeof line, f)) {
    lines++;
    assert_non_null(strstr(line, "\"offline\":false"));
    assert_non_null(strstr(line, "\"mode\":\"openai:fake\""));
  }
  fclose(f);
  assert_int_equal(lines, 2);
  // run 3: everything from the cache
  pid = spawn(bin, llm_test_server_url(srv), dir, log);
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(llm_test_server_n_requests(srv), n2);
  // the key: in no output file, in no log line
  char cmd[2 * PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "grep -r -q -a PROCESS-SECRET %s/out %s", dir, log);
  assert_int_not_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "grep -q 'llm endpoint=' %s", log);
  assert_int_equal(system(cmd), 0);
  llm_test_server_stop(&srv);
  interp_db_destroy(&db);
  for (int i = 0; i < NP; i++) free(t->ids[i]);
  free(t);
}

static void test_gene_stem(void **state) {
  (void)state;
  char s[32];
  interp_gene_stem("ZNF268", s, sizeof s);
  assert_string_equal(s, "ZNF");
  interp_gene_stem("OR5A1", s, sizeof s);
  assert_string_equal(s, "OR");
  interp_gene_stem("TP53", s, sizeof s);
  assert_string_equal(s, "TP");
  interp_gene_stem("BRCA", s, sizeof s);
  assert_string_equal(s, "");
  interp_gene_stem("C1orf43", s, sizeof s);
  assert_string_equal(s, "");
  interp_gene_stem("", s, sizeof s);
  assert_string_equal(s, "");
}

static int driver(const char *mode) {
  char line[1 << 16];
  while (fgets(line, sizeof line, stdin)) {
    char *p = line, *e;
    if (!strcmp(mode, "--hypergeom")) {
      unsigned long long k = strtoull(p, &e, 10), N = strtoull(e, &e, 10), K = strtoull(e, &e, 10), n = strtoull(e, &e, 10);
      printf("%.17g\n", offline_hypergeom_sf(k, N, K, n));
      continue;
    }
    size_t n = strtoul(p, &e, 10);
    p = e;
    double *x = malloc(2 * n * sizeof *x);
    for (size_t i = 0; i < 2 * n; i++) {
      x[i] = strtod(p, &e);
      p = e;
    }
    double r, pv;
    int rc = interp_pearson(x, x + n, n, &r, &pv);
    if (rc) printf("nan nan\n");
    else printf("%.17g %.17g\n", r, pv);
    free(x);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) return driver(argv[1]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sampling),         cmocka_unit_test(test_parse_predictions),
      cmocka_unit_test(test_parse_explanation), cmocka_unit_test(test_pearson),
      cmocka_unit_test(test_gene_stem),        cmocka_unit_test(test_offline_end_to_end),
      cmocka_unit_test(test_llm_end_to_end),  cmocka_unit_test(test_process_kill9_rerun),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
