// The scorer's analysis (stages/scorer/analysis.h) on a small store built from real annotated
// proteins (../shared human data): the enrichment written into the store equals a fresh run's
// bytes after an interrupted run (state left mid-way) and after a run with other settings (each
// option of issue 18 recorded in enrich/settings and re-enriching when changed); the
// interpretation plan is deterministic, answers are validated (count, range, unit, store),
// stored once (a duplicate is ignored), a failure is asked again after the backoff and stored as
// failed after max_attempts, an unanswered request is sent again after the timeout, and the
// summary is written once every unit is stored.
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

#include "analysis.h"
#include "featstore.h"
#include "fixture.h"
#include "fsdump.h"
#include "go.h"
#include "godata.h"

static char g_data[PATH_MAX + 32];

static int have_data(void) {
  if (!fx_find_shared("data/human-swissprot")) return 0;
  snprintf(g_data, sizeof g_data, "%s/data/human-swissprot", fx_shared_dir);
  ps_godata_t gd;
  return ps_godata_find(g_data, PS_GODATA_NEED_ONTOLOGY | PS_GODATA_NEED_ANNOTATIONS, &gd, NULL) == 0;
}

// A fresh directory under the group's scratch directory (tests/unit/fixture.h removes it all).
static const char *scratch(const char *name) {
  static char d[PATH_MAX];
  fx_path(d, sizeof d, name);
  assert_int_equal(mkdir(d, 0700), 0);
  return d;
}

// A store of n_feat features over the first n_prot annotated proteins: feature f is active on
// protein p when (p * 7 + f * 13) % 11 < 3, and features 0-3 on every protein that carries
// "their" GO term (so the enrichment finds something real).
static void make_store(const char *path, uint32_t n_feat, size_t n_prot) {
  ps_godata_t gd;
  ps_err_t err = {0};
  assert_int_equal(ps_godata_find(g_data, PS_GODATA_NEED_ONTOLOGY | PS_GODATA_NEED_ANNOTATIONS, &gd, &err), 0);
  go_ontology_t *o = NULL;
  assert_int_equal(go_ontology_load(&o, gd.obo, NULL, &err), 0);
  go_annotations_t *a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, gd.annotations, NULL, NULL, &err), 0);
  assert_true(a->n_proteins >= n_prot);
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, path, FS_OPEN_CREATE, &err), 0);
  fs_wb_t *wb = fs_wb_new();
  // marker = the most frequent direct term among the proteins used: features 0-3 fire only there
  size_t nt = go_n_terms(o);
  uint32_t *cnt = calloc(nt, sizeof *cnt);
  int32_t marker = 0;
  for (size_t p = 0; p < n_prot; p++)
    for (uint32_t t = 0; t < a->n_terms[p]; t++)
      if (++cnt[a->terms[p][t]] > cnt[marker]) marker = a->terms[p][t];
  free(cnt);
  uint32_t *idx = malloc(n_feat * sizeof *idx);
  float *val = malloc(n_feat * sizeof *val);
  uint64_t nnz = 0;
  for (size_t p = 0; p < n_prot; p++) {
    uint32_t m = 0;
    int has_marker = 0;
    for (uint32_t t = 0; t < a->n_terms[p]; t++) has_marker |= a->terms[p][t] == marker;
    for (uint32_t f = 0; f < n_feat; f++) {
      int on = f < 4 ? has_marker && (p + f) % 5 != 0 : (p * 7 + f * 13) % 11 < 3;
      if (!on) continue;
      idx[m] = f;
      val[m++] = 0.25f + (float)((p * 31 + f * 17) % 97) / 50.0f;
    }
    fs_wb_put_code(fs, wb, a->protein_ids[p], m, idx, val);
    nnz += m;
  }
  fs_meta_t meta = {FS_FORMAT, n_feat, 20, 0, 0, 0, n_prot, 0, 1, nnz, 0};
  fs_wb_put_meta(fs, wb, &meta);
  assert_int_equal(fs_commit(fs, wb, 1, &err), 0);
  fs_wb_free(&wb);
  fs_close(&fs);
  free(idx);
  free(val);
  go_annotations_destroy(&a);
  go_ontology_destroy(&o);
}

static void enrich(const char *path, scorer_enrich_t *e, int force, int expect_ran) {
  fs_t *fs = NULL;
  ps_err_t err = {0};
  assert_int_equal(fs_open(&fs, path, FS_OPEN_WRITE, &err), 0);
  int ran = -1;
  double secs = 0;
  int rc = scorer_enrich_run(e, fs, force, &ran, &secs, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(ran, expect_ran);
  fs_close(&fs);
}

static void set_kv(const char *path, const char *key, const char *val) {
  fs_t *fs = NULL;
  ps_err_t err = {0};
  assert_int_equal(fs_open(&fs, path, FS_OPEN_WRITE, &err), 0);
  fs_wb_t *wb = fs_wb_new();
  fs_wb_put_kv(fs, wb, key, val, strlen(val));
  assert_int_equal(fs_commit(fs, wb, 1, &err), 0);
  fs_wb_free(&wb);
  fs_close(&fs);
}

static void test_enrich_resume_and_settings(void **state) {
  (void)state;
  if (!have_data()) skip();
  const char *d = scratch("enrich");
  char a[PATH_MAX + 16], b[PATH_MAX + 16];
  snprintf(a, sizeof a, "%s/a.db", d);
  snprintf(b, sizeof b, "%s/b.db", d);
  make_store(a, 1200, 1500);  // > 2 groups of 512
  make_store(b, 1200, 1500);
  scorer_enrich_cfg_t cfg = {g_data, NULL, 2, {0}, 0};
  enrich_opts_default(&cfg.opts);
  scorer_enrich_t *e = NULL;
  ps_err_t err = {0};
  assert_int_equal(scorer_enrich_new(&e, &cfg, &err), 0);
  enrich(a, e, 0, 1);
  char *da = fx_dump_store(a);
  assert_non_null(strstr(da, "kv\tenrich/state\tdone\n"));
  assert_non_null(strstr(da, "kv\tenrich/summary\t{"));
  assert_non_null(strstr(da, "\nenrich\t0\t{"));
  assert_null(strstr(da, "\nenrich\t0\t{\"n_active\":0"));
  char *rec0 = strstr(da, "\nenrich\t0\t{");
  assert_null(strncmp(strstr(rec0, "\"hits\":"), "\"hits\":[]", 9) == 0 ? "feature 0 has no significant term" : NULL);
  enrich(a, e, 0, 0);  // complete with these settings: kept
  char *da2 = fx_dump_store(a);
  assert_string_equal(da, da2);
  // b: a run interrupted after the first group (what a kill -9 leaves), with a stale record
  enrich(b, e, 0, 1);
  set_kv(b, "enrich/state", "512");
  enrich(b, e, 0, 1);  // resumes the writes
  char *db = fx_dump_store(b);
  assert_string_equal(da, db);
  // other settings (alpha): cleared and recomputed; back to the first settings: same bytes again
  scorer_enrich_cfg_t cfg2 = cfg;
  cfg2.opts.alpha = 0.001;
  scorer_enrich_t *e2 = NULL;
  assert_int_equal(scorer_enrich_new(&e2, &cfg2, &err), 0);
  enrich(b, e2, 0, 1);
  char *db2 = fx_dump_store(b);
  assert_string_not_equal(da, db2);
  assert_non_null(strstr(db2, "\"alpha\":0.001"));
  enrich(b, e, 0, 1);
  char *db3 = fx_dump_store(b);
  assert_string_equal(da, db3);
  // every option of issue 18 is in the settings; a store enriched with another value of any one
  // of them is enriched again (records and settings replaced), and back again gives the same bytes
  assert_non_null(strstr(da, "\"propagation\":\"is_a+part_of\",\"population_rule\":\"annotated\","
                             "\"correction_scope\":\"all\",\"depth\":\"relations\""));
  assert_non_null(strstr(da, "\"correction\":\"bonferroni\""));
  static const char *const want[] = {"\"propagation\":\"is_a\"", "\"population_rule\":\"analysed\"",
                                     "\"correction_scope\":\"namespace\"", "\"depth\":\"is_a\"",
                                     "\"correction\":\"fdr\""};
  for (int i = 0; i < 5; i++) {
    scorer_enrich_cfg_t c4 = cfg;
    if (i == 0) c4.rels = GO_REL_IS_A;
    if (i == 1) c4.opts.population = ENRICH_POP_ANALYSED;
    if (i == 2) c4.opts.scope = ENRICH_SCOPE_NAMESPACE;
    if (i == 3) c4.opts.depth = ENRICH_DEPTH_IS_A;
    if (i == 4) c4.opts.correction = ENRICH_FDR_BH;
    scorer_enrich_t *e4 = NULL;
    assert_int_equal(scorer_enrich_new(&e4, &c4, &err), 0);
    enrich(b, e4, 0, 1);
    enrich(b, e4, 0, 0);  // complete with these settings: kept
    char *d4 = fx_dump_store(b);
    if (!strstr(d4, want[i])) fail_msg("option %d: the settings lack %s", i, want[i]);
    assert_string_not_equal(da, d4);
    free(d4);
    scorer_enrich_destroy(&e4);
  }
  enrich(b, e, 0, 1);
  char *db4 = fx_dump_store(b);
  assert_string_equal(da, db4);
  free(db4);
  // a data directory without an ontology is refused, naming it
  scorer_enrich_cfg_t bad = cfg;
  bad.data_dir = d;
  scorer_enrich_t *e3 = NULL;
  assert_true(scorer_enrich_new(&e3, &bad, &err) < 0);
  assert_non_null(strstr(err.msg, d));
  assert_non_null(strstr(err.msg, "no GO ontology"));
  scorer_enrich_destroy(&e);
  scorer_enrich_destroy(&e2);
  free(da), free(da2), free(db), free(db2), free(db3);
}

static Protsae__InterpretResult answer(const Protsae__InterpretRequest *q, double *pred, const char *failure) {
  Protsae__InterpretResult r = PROTSAE__INTERPRET_RESULT__INIT;
  r.unit = q->unit;
  r.store = "features";
  r.attempt = q->attempt;
  r.mode = "offline";
  r.explanation = "explained";
  r.failure = (char *)(failure ? failure : "");
  for (size_t i = 0; i < q->n_held_ids; i++) pred[i] = q->held_act[i] > 0.5 ? 0.9 : 0.1;
  r.n_predictions = failure ? 0 : q->n_held_ids;
  r.predictions = pred;
  r.scored = !failure;
  r.r = 0.5;
  r.p = 0.01;
  return r;
}

static void test_interp_protocol(void **state) {
  (void)state;
  if (!have_data()) skip();
  char a[PATH_MAX + 16];
  snprintf(a, sizeof a, "%s/a.db", scratch("interp"));
  make_store(a, 64, 1200);
  fs_t *fs = NULL;
  ps_err_t err = {0};
  assert_int_equal(fs_open(&fs, a, FS_OPEN_WRITE, &err), 0);
  scorer_interp_cfg_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.store_name = "features";
  cfg.n_units = 5;
  ps_sample_opts_default(&cfg.sample);
  cfg.inflight = 2;
  cfg.timeout_ms = 1000;
  cfg.backoff_ms = 100;
  cfg.max_attempts = 2;
  cfg.max_terms = 20;
  scorer_interp_t *si = NULL;
  assert_int_equal(scorer_interp_new(&si, &cfg, fs, &err), 0);
  assert_int_equal(scorer_interp_counts(si)->planned, 5);
  fs_wb_t *wb = fs_wb_new();
  double pred[64];
  uint64_t now = 1000;
  // two in flight at most
  // (the request returned is valid until the next call: the test keeps the unit ids)
  const Protsae__InterpretRequest *q1 = scorer_interp_next(si, now);
  assert_non_null(q1);
  uint32_t u1 = q1->unit;
  assert_true(q1->n_held_ids >= 3 && q1->n_shown_ids >= 3);
  assert_int_equal(q1->attempt, 1);
  scorer_interp_sent(si, q1, now);
  const Protsae__InterpretRequest *q2 = scorer_interp_next(si, now);
  assert_non_null(q2);
  uint32_t u2 = q2->unit;
  assert_int_not_equal(u1, u2);
  Protsae__InterpretResult r2 = answer(q2, pred, NULL);
  scorer_interp_sent(si, q2, now);
  assert_null(scorer_interp_next(si, now));
  // bad answers are rejected and change nothing
  r2.n_predictions--;
  assert_true(scorer_interp_apply(si, fs, wb, &r2, now, &err) < 0);
  assert_non_null(strstr(err.msg, "predictions for"));
  r2.n_predictions++;
  pred[0] = 1.5;
  assert_true(scorer_interp_apply(si, fs, wb, &r2, now, &err) < 0);
  assert_non_null(strstr(err.msg, "not in [0, 1]"));
  pred[0] = 0.5;
  r2.store = "other";
  assert_true(scorer_interp_apply(si, fs, wb, &r2, now, &err) < 0);
  r2.store = "features";
  r2.unit = 999;
  assert_true(scorer_interp_apply(si, fs, wb, &r2, now, &err) < 0);
  r2.unit = u2;
  // a good one is stored once
  assert_int_equal(scorer_interp_apply(si, fs, wb, &r2, now, &err), 1);
  assert_int_equal(fs_commit(fs, wb, 0, &err), 0);
  assert_int_equal(scorer_interp_apply(si, fs, wb, &r2, now, &err), 0);
  assert_int_equal(scorer_interp_counts(si)->duplicates, 1);
  fs_interp_t x;
  char *json = NULL;
  assert_int_equal(fs_interp_get(fs, u2, &x, &json, &err), 1);
  assert_true(x.scored);
  assert_string_equal(x.explanation, "explained");
  assert_non_null(strstr(json, "\"held\":[{\"id\":"));
  fs_interp_free(&x);
  free(json);
  // u1 fails: asked again after the backoff; fails again: stored as failed (max_attempts 2)
  Protsae__InterpretResult r1 = answer(q2, pred, "explain request: http 500");  // q1 and q2 share storage
  r1.unit = u1;
  r1.attempt = 1;
  assert_int_equal(scorer_interp_apply(si, fs, wb, &r1, now, &err), 0);
  int seen_again = 0, others = 0;
  for (uint64_t t = now; t < now + 100; t += 10) {  // not before the backoff (the others are answered)
    const Protsae__InterpretRequest *q;
    while ((q = scorer_interp_next(si, t))) {
      if (q->unit == u1) {
        seen_again = 1;
        break;
      }
      scorer_interp_sent(si, q, t);
      Protsae__InterpretResult r = answer(q, pred, NULL);
      assert_int_equal(scorer_interp_apply(si, fs, wb, &r, t, &err), 1);
      others++;
    }
  }
  assert_false(seen_again);
  assert_int_equal(others, 3);
  const Protsae__InterpretRequest *q1b = NULL;
  for (uint64_t t = now + 100; t < now + 900 && !q1b; t += 10) q1b = scorer_interp_next(si, t);
  assert_non_null(q1b);
  assert_int_equal(q1b->attempt, 2);
  scorer_interp_sent(si, q1b, now + 200);
  r1 = answer(q1b, pred, "predict answer: no predictions found in the answer");
  assert_int_equal(scorer_interp_apply(si, fs, wb, &r1, now + 300, &err), 1);
  assert_int_equal(fs_commit(fs, wb, 0, &err), 0);
  assert_int_equal(fs_interp_get(fs, u1, &x, NULL, &err), 1);
  assert_false(x.scored);
  assert_null(x.explanation);
  assert_non_null(strstr(x.failure, "no predictions"));
  fs_interp_free(&x);
  assert_true(scorer_interp_done(si));
  // a lost request comes back after the timeout (a fresh plan of 8 units on another store name)
  scorer_interp_cfg_t cfg2 = cfg;
  cfg2.n_units = 8;
  cfg2.store_name = "features";
  scorer_interp_t *si2 = NULL;
  assert_int_equal(scorer_interp_new(&si2, &cfg2, fs, &err), 0);
  assert_int_equal(scorer_interp_counts(si2)->stored, 5);  // the first five units are the same
  scorer_interp_t *keep = si;
  si = si2;
  uint64_t t = now + 5000;
  int resent = 0;
  while (!scorer_interp_done(si) && t < now + 60000) {
    const Protsae__InterpretRequest *q = scorer_interp_next(si, t);
    if (!q) {
      t += 500;
      continue;
    }
    scorer_interp_sent(si, q, t);
    if (q->attempt > 1) resent = 1;
    if (!resent) {  // lose the first request of this phase: it must come back
      t += 1500;
      continue;
    }
    Protsae__InterpretResult r = answer(q, pred, NULL);
    assert_true(scorer_interp_apply(si, fs, wb, &r, t, &err) >= 0);
    assert_int_equal(fs_commit(fs, wb, 0, &err), 0);  // as the scorer does after each stored answer
  }
  assert_true(resent);
  assert_true(scorer_interp_done(si));
  assert_int_equal(scorer_interp_finish(si, fs, wb, &err), 1);
  scorer_interp_destroy(&keep);
  assert_int_equal(fs_commit(fs, wb, 0, &err), 0);
  assert_int_equal(scorer_interp_finish(si, fs, wb, &err), 0);  // once
  char *sum = NULL;
  assert_int_equal(fs_kv_get(fs, "interp/summary", &sum, NULL, &err), 1);
  assert_non_null(strstr(sum, "\"units\":8"));
  if (!strstr(sum, "\"scored\":7")) fprintf(stderr, "summary: %s\n", sum);
  assert_non_null(strstr(sum, "\"scored\":7"));
  assert_non_null(strstr(sum, "\"failed\":1"));
  free(sum);
  scorer_interp_destroy(&si);
  // a restart plans the same units and finds them all stored
  assert_int_equal(scorer_interp_new(&si, &cfg2, fs, &err), 0);
  assert_true(scorer_interp_done(si));
  assert_null(scorer_interp_next(si, t));
  scorer_interp_destroy(&si);
  fs_wb_free(&wb);
  fs_close(&fs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_enrich_resume_and_settings),
      cmocka_unit_test(test_interp_protocol),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
