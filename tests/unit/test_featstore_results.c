// Feature store results API (featstore.h: families enrich and interp, string keys): enrichment and
// explanation records round trip exactly (doubles to the bit, tiny p, ln_p far below log(DBL_MIN));
// clearing drops every enrichment record; fs_dump shows them and is byte-identical for equal
// content; a malformed record is an error naming the store and the feature; a store written before
// these families existed (opened read-only) reads as empty, not as an error.
#include <math.h>
#include <rocksdb/c.h>
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

#include "fixture.h"

#include "featstore.h"
#include "fsutil.h"

// A new directory under the scratch directory, for a test's stores; removed by rmrf.
static char tmpl[PATH_MAX];
static const char *tmpdir(void) {
  static int k;
  char name[32];
  snprintf(name, sizeof name, "t%d", k++);
  assert_int_equal(mkdir(fx_path(tmpl, sizeof tmpl, name), 0700), 0);
  return tmpl;
}
static void rmrf(const char *d) { assert_int_equal(ps_rm_rf(d), 0); }

static int same_bits(double a, double b) { return !memcmp(&a, &b, sizeof a); }
static int same_bitsf(float a, float b) { return !memcmp(&a, &b, sizeof a); }

// Feature id -> a record with a few hits; values chosen to stress the text round trip.
static void make_enrich(uint32_t id, fs_enrich_feat_t *e) {
  memset(e, 0, sizeof *e);
  e->n_active = 1000 + id;
  e->n_study = 900 + id;
  e->max_act = 3.14159274f * (float)(id + 1);
  e->n_touched = 77 + id;
  snprintf(e->best_f1_go, sizeof e->best_f1_go, "GO:%07u", 5515 + id);
  e->best_f1 = 0.1f + 1e-7f * (float)id;
  e->best_f1_threshold = 0.35f;
  e->n_hits = 3;
  e->hits = calloc(3, sizeof *e->hits);
  for (uint32_t i = 0; i < 3; i++) {
    fs_term_hit_t *h = &e->hits[i];
    snprintf(h->go_id, sizeof h->go_id, "GO:%07u", 5515 + id + i);
    h->ns = (int)i;
    h->depth = (int)(3 + i);
    char nm[64];
    snprintf(nm, sizeof nm, "term \"%u\"\twith\\tab é %u", id, i);
    h->name = strdup(nm);
    h->k = 10 + i, h->n = 900 + id, h->K = 50 + i, h->N = 20000;
    h->fold = 1.0 / 3.0 + id;
    h->p = i == 0 ? 1e-300 : i == 1 ? 4.9406564584124654e-324 : 0.1 + 1.0 / 7.0;
    h->ln_p = i == 1 ? -800.0 : log(h->p > 0 ? h->p : 1e-300);
    h->p_bonf = h->p * 3000;
    h->q_bh = nextafter(h->p_bonf, 1.0);
    h->f1 = 1.0f / 3.0f;
    h->f1_threshold = 0.05f * (float)(i + 1);
  }
}

static void assert_enrich_equal(const fs_enrich_feat_t *a, const fs_enrich_feat_t *b) {
  assert_int_equal(a->n_active, b->n_active);
  assert_int_equal(a->n_study, b->n_study);
  assert_true(same_bitsf(a->max_act, b->max_act));
  assert_int_equal(a->n_touched, b->n_touched);
  assert_string_equal(a->best_f1_go, b->best_f1_go);
  assert_true(same_bitsf(a->best_f1, b->best_f1));
  assert_true(same_bitsf(a->best_f1_threshold, b->best_f1_threshold));
  assert_int_equal(a->n_hits, b->n_hits);
  for (uint32_t i = 0; i < a->n_hits; i++) {
    const fs_term_hit_t *x = &a->hits[i], *y = &b->hits[i];
    assert_string_equal(x->go_id, y->go_id);
    assert_int_equal(x->ns, y->ns);
    assert_int_equal(x->depth, y->depth);
    assert_string_equal(x->name, y->name);
    assert_int_equal(x->k, y->k);
    assert_int_equal(x->n, y->n);
    assert_int_equal(x->K, y->K);
    assert_int_equal(x->N, y->N);
    const double xd[] = {x->fold, x->p, x->ln_p, x->p_bonf, x->q_bh}, yd[] = {y->fold, y->p, y->ln_p, y->p_bonf, y->q_bh};
    for (int j = 0; j < 5; j++) {
      if (!same_bits(xd[j], yd[j])) fail_msg("hit %u value %d: %a != %a", i, j, xd[j], yd[j]);
    }
    assert_true(same_bitsf(x->f1, y->f1));
    assert_true(same_bitsf(x->f1_threshold, y->f1_threshold));
  }
}

static const char *interp_json(uint32_t unit, char *buf, size_t cap) {
  if (unit == 9)  // failed for good: no explanation, not scored
    snprintf(buf, cap,
             "{\"unit\":9,\"kind\":\"feature\",\"explanation\":null,\"r\":null,\"p\":null,\"scored\":false,"
             "\"constant_prediction\":false,\"failure\":\"HTTP 529\",\"mode\":\"anthropic:m\",\"attempts\":3,"
             "\"n_active\":4,\"shown\":[],\"held\":[]}");
  else
    snprintf(buf, cap,
             "{\"unit\":%u,\"kind\":\"feature\",\"explanation\":\"kinase %u\",\"r\":0.%u25,\"p\":1e-%u,\"scored\":true,"
             "\"constant_prediction\":%s,\"failure\":\"\",\"mode\":\"offline\",\"attempts\":1,\"n_active\":12,"
             "\"shown\":[{\"id\":\"P1\",\"act\":1.5}],\"held\":[{\"id\":\"P2\",\"act\":0.5,\"pred\":0.25}],"
             "\"answer1\":\"a\",\"answer2\":\"b\"}",
             unit, unit, unit, unit + 2, unit == 4 ? "true" : "false");
  return buf;
}

// A store with meta, 2 enrichment records, 3 explanations and the string keys.
static void fill(fs_t *fs, int order) {
  ps_err_t err = {0};
  fs_wb_t *wb = fs_wb_new();
  fs_meta_t m = {.format = FS_FORMAT, .n_features = 16, .top_n = 4, .proteins = 10};
  fs_wb_put_meta(fs, wb, &m);
  const uint32_t ids[2] = {3, 11}, units[3] = {4, 9, 2};
  for (int i = 0; i < 2; i++) {
    fs_enrich_feat_t e;
    make_enrich(ids[order ? 1 - i : i], &e);
    fs_wb_put_enrich(fs, wb, ids[order ? 1 - i : i], &e);
    fs_enrich_feat_free(&e);
  }
  for (int i = 0; i < 3; i++) {
    char buf[1024];
    uint32_t u = units[order ? 2 - i : i];
    interp_json(u, buf, sizeof buf);
    fs_wb_put_interp(fs, wb, u, buf, strlen(buf));
  }
  const char *s = "{\"n_features\":16,\"n_sig_pairs\":6}";
  fs_wb_put_kv(fs, wb, "enrich/summary", s, strlen(s));
  fs_wb_put_kv(fs, wb, "enrich/settings", "{\"alpha\":0.05}", 14);
  fs_wb_put_kv(fs, wb, "interp/summary", "{\"mode\":\"offline\"}", 18);
  fs_wb_put_kv(fs, wb, "enrich/state", "done", 4);
  assert_int_equal(fs_commit(fs, wb, 1, &err), 0);
  fs_wb_free(&wb);
}

struct seen {
  uint32_t ids[8];
  int n;
};
static int seen_enrich(uint32_t f, const fs_enrich_feat_t *e, void *ctx) {
  struct seen *s = ctx;
  fs_enrich_feat_t want;
  make_enrich(f, &want);
  assert_enrich_equal(e, &want);
  fs_enrich_feat_free(&want);
  s->ids[s->n++] = f;
  return 0;
}
static int seen_interp(uint32_t u, const fs_interp_t *x, const char *json, void *ctx) {
  struct seen *s = ctx;
  char buf[1024];
  assert_string_equal(json, interp_json(u, buf, sizeof buf));
  assert_int_equal(x->unit, u);
  s->ids[s->n++] = u;
  return 0;
}

static void test_roundtrip(void **st) {
  (void)st;
  const char *d = tmpdir();
  char db[128];
  snprintf(db, sizeof db, "%s/f.db", d);
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, db, FS_OPEN_CREATE, &err), 0);
  assert_int_equal(fs_enrich_done(fs, &err), 0);
  fill(fs, 0);
  fs_close(&fs);

  assert_int_equal(fs_open(&fs, db, FS_OPEN_READONLY, &err), 0);
  assert_int_equal(fs_enrich_done(fs, &err), 1);
  fs_enrich_feat_t e, want;
  for (uint32_t f = 0; f < 16; f++) {
    int rc = fs_enrich_get(fs, f, &e, &err);
    if (f == 3 || f == 11) {
      assert_int_equal(rc, 1);
      make_enrich(f, &want);
      assert_enrich_equal(&e, &want);
      fs_enrich_feat_free(&want);
      fs_enrich_feat_free(&e);
    } else {
      assert_int_equal(rc, 0);
    }
  }
  struct seen s = {{0}, 0};
  assert_int_equal(fs_enrich_each(fs, seen_enrich, &s, &err), 0);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.ids[0], 3);
  assert_int_equal(s.ids[1], 11);

  fs_interp_t x;
  char *json = NULL, buf[1024];
  assert_int_equal(fs_interp_get(fs, 4, &x, &json, &err), 1);
  assert_string_equal(json, interp_json(4, buf, sizeof buf));
  assert_string_equal(x.explanation, "kinase 4");
  assert_true(same_bits(x.r, 0.425));
  assert_true(same_bits(x.p, 1e-6));
  assert_int_equal(x.scored, 1);
  assert_int_equal(x.constant_pred, 1);
  assert_string_equal(x.failure, "");
  assert_string_equal(x.mode, "offline");
  assert_int_equal(x.attempts, 1);
  fs_interp_free(&x);
  free(json);
  assert_int_equal(fs_interp_get(fs, 9, &x, NULL, &err), 1);
  assert_null(x.explanation);
  assert_true(isnan(x.r) && isnan(x.p));
  assert_int_equal(x.scored, 0);
  assert_string_equal(x.failure, "HTTP 529");
  assert_string_equal(x.mode, "anthropic:m");
  assert_int_equal(x.attempts, 3);
  fs_interp_free(&x);
  assert_int_equal(fs_interp_get(fs, 5, &x, &json, &err), 0);
  assert_null(json);
  s.n = 0;
  assert_int_equal(fs_interp_each(fs, seen_interp, &s, &err), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.ids[0], 2);
  assert_int_equal(s.ids[1], 4);
  assert_int_equal(s.ids[2], 9);

  char *v = NULL;
  size_t len = 0;
  assert_int_equal(fs_kv_get(fs, "enrich/summary", &v, &len, &err), 1);
  assert_string_equal(v, "{\"n_features\":16,\"n_sig_pairs\":6}");
  assert_int_equal(len, strlen(v));
  free(v);
  assert_int_equal(fs_kv_get(fs, "interp/plan", &v, &len, &err), 0);
  assert_null(v);
  assert_int_equal(len, 0);
  fs_close(&fs);
  rmrf(d);
}

static char *dump(const char *db, size_t *n) {
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, db, FS_OPEN_READONLY, &err), 0);
  char *buf = NULL;
  FILE *f = open_memstream(&buf, n);
  assert_int_equal(fs_dump(fs, f, &err), 0);
  fclose(f);
  fs_close(&fs);
  return buf;
}

static void test_dump_and_clear(void **st) {
  (void)st;
  const char *d = tmpdir();
  char a[128], b[128];
  snprintf(a, sizeof a, "%s/a.db", d);
  snprintf(b, sizeof b, "%s/b.db", d);
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, a, FS_OPEN_CREATE, &err), 0);
  fill(fs, 0);
  fs_close(&fs);
  assert_int_equal(fs_open(&fs, b, FS_OPEN_CREATE, &err), 0);
  fill(fs, 1);  // other write order, same content
  fs_close(&fs);
  size_t na, nb;
  char *da = dump(a, &na), *db = dump(b, &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(da, db, na);
  assert_non_null(strstr(da, "\nenrich\t3\t{"));
  assert_non_null(strstr(da, "\nenrich\t11\t{"));
  assert_non_null(strstr(da, "\ninterp\t9\t{"));
  assert_non_null(strstr(da, "\nkv\tenrich/state\tdone\n"));
  assert_non_null(strstr(da, "\nkv\tinterp/summary\t{\"mode\":\"offline\"}\n"));
  free(db);

  // clear: every enrichment record goes (also the highest id), the rest stays
  assert_int_equal(fs_open(&fs, a, FS_OPEN_WRITE, &err), 0);
  fs_wb_t *wb = fs_wb_new();
  fs_enrich_feat_t e;
  make_enrich(0xffffffffu, &e);
  fs_wb_put_enrich(fs, wb, 0xffffffffu, &e);
  fs_enrich_feat_free(&e);
  assert_int_equal(fs_commit(fs, wb, 0, &err), 0);
  assert_int_equal(fs_enrich_get(fs, 0xffffffffu, &e, &err), 1);
  fs_enrich_feat_free(&e);
  fs_wb_clear(wb);
  fs_wb_clear_enrich(fs, wb);
  fs_wb_del_kv(fs, wb, "enrich/state");
  assert_int_equal(fs_commit(fs, wb, 1, &err), 0);
  fs_wb_free(&wb);
  struct seen s = {{0}, 0};
  assert_int_equal(fs_enrich_each(fs, seen_enrich, &s, &err), 0);
  assert_int_equal(s.n, 0);
  assert_int_equal(fs_enrich_get(fs, 3, &e, &err), 0);
  assert_int_equal(fs_enrich_get(fs, 0xffffffffu, &e, &err), 0);
  assert_int_equal(fs_enrich_done(fs, &err), 0);
  s.n = 0;
  assert_int_equal(fs_interp_each(fs, seen_interp, &s, &err), 0);
  assert_int_equal(s.n, 3);
  fs_close(&fs);
  size_t nc;
  char *dc = dump(a, &nc);
  assert_null(strstr(dc, "\nenrich\t"));
  assert_null(strstr(dc, "enrich/state"));
  assert_non_null(strstr(dc, "\ninterp\t4\t{"));
  free(dc);
  free(da);
  rmrf(d);
}

static void test_malformed(void **st) {
  (void)st;
  const char *d = tmpdir();
  char db[128];
  snprintf(db, sizeof db, "%s/bad.db", d);
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, db, FS_OPEN_CREATE, &err), 0);
  fill(fs, 0);
  // bypass the encoder: write text that is not a record under feature 7 and unit 8
  fs_wb_t *wb = fs_wb_new();
  fs_enrich_feat_t e;
  make_enrich(7, &e);
  fs_wb_put_enrich(fs, wb, 7, &e);
  fs_enrich_feat_free(&e);
  fs_wb_put_interp(fs, wb, 8, "{\"unit\":8,", 10);
  assert_int_equal(fs_commit(fs, wb, 0, &err), 0);
  fs_wb_free(&wb);
  fs_close(&fs);
  // overwrite feature 7's record with broken JSON through RocksDB directly
  {
    rocksdb_options_t *o = rocksdb_options_create();
    char *e2 = NULL;
    size_t ncf = 0;
    char **names = rocksdb_list_column_families(o, db, &ncf, &e2);
    assert_null(e2);
    const rocksdb_options_t *cfo[8];
    rocksdb_column_family_handle_t *h[8];
    assert_true(ncf <= 8);
    for (size_t i = 0; i < ncf; i++) cfo[i] = o;
    rocksdb_t *r = rocksdb_open_column_families(o, db, (int)ncf, (const char *const *)names, cfo, h, &e2);
    assert_null(e2);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    for (size_t i = 0; i < ncf; i++)
      if (!strcmp(names[i], "enrich")) {
        const char k[4] = {0, 0, 0, 7};
        rocksdb_put_cf(r, wo, h[i], k, 4, "{\"n_active\":3,\"hits\":[[1,2]]}", 29, &e2);
        assert_null(e2);
        const char k2[4] = {0, 0, 0, 9};
        rocksdb_put_cf(r, wo, h[i], k2, 4, "not json", 8, &e2);
        assert_null(e2);
      }
    rocksdb_writeoptions_destroy(wo);
    for (size_t i = 0; i < ncf; i++) rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(r);
    rocksdb_list_column_families_destroy(names, ncf);
    rocksdb_options_destroy(o);
  }
  assert_int_equal(fs_open(&fs, db, FS_OPEN_READONLY, &err), 0);
  assert_true(fs_enrich_get(fs, 7, &e, &err) < 0);
  assert_non_null(strstr(err.msg, db));
  assert_non_null(strstr(err.msg, "feature 7"));
  ps_err_clear(&err);
  assert_true(fs_enrich_get(fs, 9, &e, &err) < 0);
  assert_non_null(strstr(err.msg, db));
  assert_non_null(strstr(err.msg, "feature 9"));
  ps_err_clear(&err);
  struct seen s = {{0}, 0};
  assert_true(fs_enrich_each(fs, seen_enrich, &s, &err) < 0);
  assert_non_null(strstr(err.msg, db));
  assert_non_null(strstr(err.msg, "feature 7"));
  assert_int_equal(s.n, 1);  // feature 3 came before the bad record
  ps_err_clear(&err);
  fs_interp_t x;
  char *json = NULL;
  assert_true(fs_interp_get(fs, 8, &x, &json, &err) < 0);
  assert_null(json);
  assert_non_null(strstr(err.msg, db));
  assert_non_null(strstr(err.msg, "unit 8"));
  ps_err_clear(&err);
  // the JSON decoder on its own
  assert_true(fs_enrich_feat_from_json(&e, "[]", 2, "what", &err) < 0);
  assert_non_null(strstr(err.msg, "what"));
  ps_err_clear(&err);
  assert_true(fs_enrich_feat_from_json(&e, "{\"n_active\":1}", 14, "what", &err) < 0);
  assert_non_null(strstr(err.msg, "hits"));
  fs_close(&fs);
  rmrf(d);
}

// A store written before the enrich / interp families existed: the families of format 1.
static void test_older_store(void **st) {
  (void)st;
  const char *d = tmpdir();
  char db[128];
  snprintf(db, sizeof db, "%s/old.db", d);
  {
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    const char *names[4] = {"default", "feat", "codes", "applied"};
    const rocksdb_options_t *cfo[4] = {o, o, o, o};
    rocksdb_column_family_handle_t *h[4];
    char *e = NULL;
    rocksdb_t *r = rocksdb_open_column_families(o, db, 4, names, cfo, h, &e);
    assert_null(e);
    for (int i = 0; i < 4; i++) rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(r);
    rocksdb_options_destroy(o);
  }
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, db, FS_OPEN_READONLY, &err), 0);
  fs_enrich_feat_t e;
  assert_int_equal(fs_enrich_get(fs, 0, &e, &err), 0);
  assert_int_equal(fs_enrich_done(fs, &err), 0);
  struct seen s = {{0}, 0};
  assert_int_equal(fs_enrich_each(fs, seen_enrich, &s, &err), 0);
  assert_int_equal(fs_interp_each(fs, seen_interp, &s, &err), 0);
  assert_int_equal(s.n, 0);
  fs_interp_t x;
  char *json = NULL;
  assert_int_equal(fs_interp_get(fs, 1, &x, &json, &err), 0);
  char *v = NULL;
  assert_int_equal(fs_kv_get(fs, "enrich/summary", &v, NULL, &err), 0);
  fs_close(&fs);
  // and a new, empty store opened read-only
  snprintf(db, sizeof db, "%s/new.db", d);
  assert_int_equal(fs_open(&fs, db, FS_OPEN_CREATE, &err), 0);
  fs_close(&fs);
  assert_int_equal(fs_open(&fs, db, FS_OPEN_READONLY, &err), 0);
  assert_int_equal(fs_enrich_get(fs, 0, &e, &err), 0);
  assert_int_equal(fs_enrich_done(fs, &err), 0);
  assert_int_equal(fs_interp_each(fs, seen_interp, &s, &err), 0);
  assert_int_equal(s.n, 0);
  fs_close(&fs);
  rmrf(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_dump_and_clear),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_older_store),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
