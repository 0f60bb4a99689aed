// Feature store and scorer: histogram bins, top lists and fixed-point sums are order-free; records
// round trip and bad records are named errors; the scorer applies each (producer, seq) once,
// whatever the order, across restarts (commit / crash before commit), rejects NaN, negative and
// inconsistent batches without changing anything, reports missing seqs; residue level keeps
// pooled statistics and top positions; nothing off the wire is trusted (seq, EndOfStream and
// n_features bounds, absurd values stored by an older version). The encoder's tests are in
// test_encoder.c.
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

#include "featstore.h"
#include "fixture.h"
#include "fsdump.h"
#include "io.h"
#include "scorer.h"
#include "wire.h"

// A fresh directory under the group's scratch directory (tests/unit/fixture.h removes it all).
static const char *scratch(const char *name) {
  static char d[PATH_MAX];
  fx_path(d, sizeof d, name);
  assert_int_equal(mkdir(d, 0700), 0);
  return d;
}

// ---- featstore ------------------------------------------------------------------------------------
static void test_hist_bins(void **st) {
  (void)st;
  assert_int_equal(fs_hist_bin(1.0f), 32);
  assert_int_equal(fs_hist_bin(1.4f), 32);
  assert_int_equal(fs_hist_bin(1.5f), 33);
  assert_int_equal(fs_hist_bin(2.0f), 34);
  assert_int_equal(fs_hist_bin(0.5f), 30);
  assert_int_equal(fs_hist_bin(0.7f), 30);
  assert_int_equal(fs_hist_bin(1e-30f), 0);
  assert_int_equal(fs_hist_bin(1e30f), FS_HIST_BINS - 1);
  for (int b = 1; b < FS_HIST_BINS - 1; b++) {
    // the lower edge of bin b falls in bin b (edges rounded to float may land one below)
    float lo = (float)fs_hist_lower(b) * 1.0001f;
    assert_int_equal(fs_hist_bin(lo), b);
  }
}

static void offer_all(fs_feat_t *f, const float *v, const char *const *ids, const int *order, int n, uint32_t cap) {
  for (int i = 0; i < n; i++) {
    int j = order[i];
    fs_feat_add(f, v[j]);
    fs_feat_offer_top(f, cap, v[j], ids[j], FS_POS_NONE);
  }
}

static void test_top_order_free(void **st) {
  (void)st;
  const float v[] = {0.5f, 2.0f, 2.0f, 1.0f, 3.0f, 0.25f, 2.0f, 1.0f};
  const char *const ids[] = {"E", "B", "A", "D", "Z", "F", "C", "G"};
  const int o1[] = {0, 1, 2, 3, 4, 5, 6, 7}, o2[] = {7, 6, 5, 4, 3, 2, 1, 0}, o3[] = {4, 2, 6, 0, 7, 1, 5, 3};
  const int *orders[] = {o1, o2, o3};
  uint8_t *buf0 = NULL, *buf = NULL;
  size_t cap0 = 0, cap = 0, n0 = 0;
  for (int k = 0; k < 3; k++) {
    fs_feat_t f;
    fs_feat_init(&f, 4);
    offer_all(&f, v, ids, orders[k], 8, 4);
    assert_int_equal(f.n_top, 4);
    assert_true(f.top[0].value == 3.0f && !strcmp(f.top[0].id, "Z"));
    // ties on value broken by id
    assert_string_equal(f.top[1].id, "A");
    assert_string_equal(f.top[2].id, "B");
    assert_string_equal(f.top[3].id, "C");
    assert_int_equal(f.n_active, 8);
    assert_true(f.max == 3.0f);
    size_t n = fs_feat_encode(&f, k == 0 ? &buf0 : &buf, k == 0 ? &cap0 : &cap);
    if (k == 0) n0 = n;
    else assert_memory_equal(buf0, buf, n0), assert_int_equal(n, n0);
    fs_feat_clear(&f);
  }
  // the same id offered again keeps one entry, with its best value
  fs_feat_t f;
  fs_feat_init(&f, 3);
  fs_feat_offer_top(&f, 3, 1.0f, "X", FS_POS_NONE);
  fs_feat_offer_top(&f, 3, 2.0f, "X", FS_POS_NONE);
  fs_feat_offer_top(&f, 3, 0.5f, "X", FS_POS_NONE);
  assert_int_equal(f.n_top, 1);
  assert_true(f.top[0].value == 2.0f);
  fs_feat_clear(&f);
  free(buf0);
  free(buf);
}

static void test_fixed_point_sums(void **st) {
  (void)st;
  // sums do not depend on the order (floating-point sums would: 1e8 + 1 - 1e8)
  fs_feat_t a, b;
  fs_feat_init(&a, 1);
  fs_feat_init(&b, 1);
  const float v[] = {1e7f, 0.1f, 3.0e-3f, 12345.678f, 0.7f};
  for (int i = 0; i < 5; i++) fs_feat_add(&a, v[i]);
  for (int i = 4; i >= 0; i--) fs_feat_add(&b, v[i]);
  assert_true(a.sum_fx == b.sum_fx && a.sumsq_fx == b.sumsq_fx);
  double s = 0;
  for (int i = 0; i < 5; i++) s += v[i];
  assert_true(fabs(fs_fx_double(a.sum_fx) - s) < 1e-6 * s);
  assert_true(fabs(fs_feat_mean(&a) - s / 5) < 1e-6 * s);
  fs_feat_clear(&a);
  fs_feat_clear(&b);
}

static void test_record_errors(void **st) {
  (void)st;
  fs_feat_t f, g;
  fs_feat_init(&f, 2);
  fs_feat_init(&g, 2);
  fs_feat_add(&f, 1.0f);
  fs_feat_offer_top(&f, 2, 1.0f, "P12345", 7);
  uint8_t *buf = NULL;
  size_t cap = 0, n = fs_feat_encode(&f, &buf, &cap);
  ps_err_t err = {0};
  assert_int_equal(fs_feat_decode(&g, 2, buf, n, "rec", &err), 0);
  assert_int_equal(g.n_top, 1);
  assert_string_equal(g.top[0].id, "P12345");
  assert_int_equal(g.top[0].pos, 7);
  assert_int_equal(fs_feat_decode(&g, 2, buf, n - 3, "rec", &err), PS_ETRUNC);
  assert_non_null(strstr(err.msg, "rec: top entry 0"));
  assert_int_equal(fs_feat_decode(&g, 2, buf, 20, "rec", &err), PS_ETRUNC);
  assert_int_equal(fs_feat_decode(&g, 0, buf, n, "rec", &err), PS_EFORMAT);  // more entries than the store keeps
  buf[0] ^= 0xff;
  assert_int_equal(fs_feat_decode(&g, 2, buf, n, "rec", &err), PS_EFORMAT);
  assert_non_null(strstr(err.msg, "bad magic"));
  free(buf);
  fs_feat_clear(&f);
  fs_feat_clear(&g);
}

// ---- scorer ---------------------------------------------------------------------------------------
#define NF 16
#define NB 12
#define ROWS 5

typedef struct tbatch {
  char *ids[ROWS];
  uint32_t indptr[ROWS + 1], indices[ROWS * 4];
  float values[ROWS * 4];
  Protsae__FeatureBatch fb;
} tbatch_t;

static void make_batch(tbatch_t *b, uint64_t seq) {
  memset(b, 0, sizeof *b);
  protsae__feature_batch__init(&b->fb);
  uint64_t x = seq * 0x9E3779B97F4A7C15ull + 1;
  uint32_t nnz = 0;
  for (int r = 0; r < ROWS; r++) {
    b->ids[r] = malloc(16);
    snprintf(b->ids[r], 16, "P%02llu_%d", (unsigned long long)seq, r);
    b->indptr[r] = nnz;
    uint32_t f = (uint32_t)((x >> 7) % NF);
    for (int j = 0; j < 3; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b->indices[nnz] = (f + (uint32_t)j * 5) % NF;  // ascending is not required by the store
      b->values[nnz] = (float)((x >> 40) % 1000) / 100.0f + 0.01f;
      nnz++;
    }
  }
  b->indptr[ROWS] = nnz;
  b->fb.n_protein_ids = ROWS;
  b->fb.protein_ids = b->ids;
  b->fb.n_rows = ROWS;
  b->fb.n_features = NF;
  b->fb.n_indptr = ROWS + 1;
  b->fb.indptr = b->indptr;
  b->fb.n_indices = b->fb.n_values = nnz;
  b->fb.indices = b->indices;
  b->fb.values = b->values;
  b->fb.source_seq = seq;
  b->fb.source_producer = "reader-0";
}
static void free_batch(tbatch_t *b) {
  for (int r = 0; r < ROWS; r++) free(b->ids[r]);
}

static void apply_order(const char *db, const int *order, int n, int commit_every) {
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  for (int i = 0; i < n; i++) {
    tbatch_t b;
    make_batch(&b, (uint64_t)order[i]);
    assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
    free_batch(&b);
    if ((i + 1) % commit_every == 0) assert_int_equal(scorer_commit(s, &err), 0);
  }
  assert_int_equal(scorer_note_eos(s, "reader-0", NB, NB * ROWS, NB * ROWS, &err), 0);
  assert_int_equal(scorer_commit(s, &err), 0);
  scorer_close(&s);
}

static void test_scorer_order_free_exactly_once(void **st) {
  (void)st;
  const char *d = scratch("order_free");
  char db1[PATH_MAX + 16], db2[PATH_MAX + 16], db3[PATH_MAX + 16];
  snprintf(db1, sizeof db1, "%s/a", d);
  snprintf(db2, sizeof db2, "%s/b", d);
  snprintf(db3, sizeof db3, "%s/c", d);
  int o1[NB], o2[NB];
  for (int i = 0; i < NB; i++) o1[i] = i, o2[i] = (i * 5 + 3) % NB;
  apply_order(db1, o1, NB, 4);
  apply_order(db2, o2, NB, 5);
  char *a = fx_dump_store(db1), *b = fx_dump_store(db2);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "proteins=60"));
  assert_non_null(strstr(a, "batches=12"));
  // crash before a commit: uncommitted batches vanish; re-applying them (and replays of the
  // committed ones) gives the same store
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db3, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  for (int i = 0; i < 8; i++) {
    tbatch_t t;
    make_batch(&t, (uint64_t)i);
    assert_int_equal(scorer_apply(s, &t.fb, &err), 1);
    free_batch(&t);
    if (i == 4) assert_int_equal(scorer_commit(s, &err), 0);  // 0..4 committed, 5..7 pending
  }
  scorer_close(&s);  // "kill -9": no commit
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  assert_int_equal(scorer_meta(s)->batches, 5);
  for (int i = NB - 1; i >= 0; i--) {
    tbatch_t t;
    make_batch(&t, (uint64_t)i);
    assert_int_equal(scorer_apply(s, &t.fb, &err), i <= 4 ? 0 : 1);
    free_batch(&t);
  }
  assert_int_equal(scorer_counts(s)->duplicates, 5);
  assert_int_equal(scorer_note_eos(s, "reader-0", NB, NB * ROWS, NB * ROWS, &err), 0);
  assert_int_equal(scorer_commit(s, &err), 0);
  assert_int_equal(scorer_streams_complete(s), 1);
  scorer_close(&s);
  char *c = fx_dump_store(db3);
  assert_string_equal(a, c);
  free(a);
  free(b);
  free(c);
}

static void test_scorer_rejects_and_missing(void **st) {
  (void)st;
  const char *d = scratch("rejects");
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/db", d);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  tbatch_t b;
  make_batch(&b, 0);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  free_batch(&b);
  assert_int_equal(scorer_commit(s, &err), 0);
  char *before = fx_dump_store(db);
  // NaN at entry 4
  make_batch(&b, 1);
  b.values[4] = NAN;
  assert_int_equal(scorer_apply(s, &b.fb, &err), PS_ENAN);
  assert_non_null(strstr(err.msg, "reader-0 batch seq=1"));
  assert_non_null(strstr(err.msg, "entry 4"));
  b.values[4] = -1.0f;
  assert_int_equal(scorer_apply(s, &b.fb, &err), PS_ENAN);
  b.values[4] = 1.0f;
  // another dictionary size
  b.fb.n_features = NF * 2;
  assert_int_equal(scorer_apply(s, &b.fb, &err), PS_EMISMATCH);
  assert_non_null(strstr(err.msg, "32 features"));
  b.fb.n_features = NF;
  // a feature id out of range, a broken indptr
  b.indices[2] = NF;
  assert_int_equal(scorer_apply(s, &b.fb, &err), PS_EPROTO);
  b.indices[2] = 1;
  b.indptr[2] = 99;
  assert_true(scorer_apply(s, &b.fb, &err) < 0);
  free_batch(&b);
  assert_int_equal(scorer_counts(s)->rejected, 5);
  assert_int_equal(scorer_commit(s, &err), 0);
  char *after = fx_dump_store(db);
  assert_string_equal(before, after);  // nothing changed
  // missing seqs: 0 applied, the stream has 4
  assert_int_equal(scorer_note_eos(s, "reader-0", 4, 0, 0, &err), 0);
  uint64_t seqs[8];
  const char *p = NULL;
  assert_int_equal(scorer_streams_known(s), 1);
  assert_int_equal(scorer_missing(s, 0, &p, seqs, 8), 3);
  assert_string_equal(p, "reader-0");
  assert_true(seqs[0] == 1 && seqs[1] == 2 && seqs[2] == 3);
  assert_int_equal(scorer_streams_complete(s), 0);
  scorer_close(&s);
  free(before);
  free(after);
}

static void test_scorer_residue_level(void **st) {
  (void)st;
  const char *d = scratch("residue");
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/db", d);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 3, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  // 2 proteins: A has 3 residues, B has 2; 4 features
  char *ids[] = {"A", "B"};
  uint32_t offs[] = {0, 3, 5};
  uint32_t indptr[] = {0, 1, 3, 3, 4, 5};
  uint32_t idx[] = {0, 0, 2, 0, 3};
  float val[] = {1.0f, 3.0f, 0.5f, 2.0f, 4.0f};
  uint32_t pptr[] = {0, 2, 4}, pidx[] = {0, 2, 0, 3};
  float pval[] = {4.0f / 3, 0.5f / 3, 1.0f, 2.0f};
  Protsae__FeatureBatch fb = PROTSAE__FEATURE_BATCH__INIT;
  fb.n_protein_ids = 2;
  fb.protein_ids = ids;
  fb.level = PROTSAE__LEVEL__LEVEL_RESIDUE;
  fb.n_rows = 5;
  fb.n_features = 4;
  fb.n_indptr = 6;
  fb.indptr = indptr;
  fb.n_indices = fb.n_values = 5;
  fb.indices = idx;
  fb.values = val;
  fb.n_residue_offsets = 3;
  fb.residue_offsets = offs;
  fb.n_pooled_indptr = 3;
  fb.pooled_indptr = pptr;
  fb.n_pooled_indices = fb.n_pooled_values = 4;
  fb.pooled_indices = pidx;
  fb.pooled_values = pval;
  fb.source_producer = "r";
  assert_int_equal(scorer_apply(s, &fb, &err), 1);
  assert_int_equal(scorer_commit(s, &err), 0);
  fs_feat_t f;
  fs_feat_init(&f, 3);
  assert_int_equal(fs_feat_get(scorer_store(s), 0, 3, &f, &err), 1);
  assert_int_equal(f.n_active, 2);     // proteins (pooled)
  assert_int_equal(f.res_active, 3);   // residues
  assert_true(f.res_max == 3.0f);
  assert_true(f.max == 4.0f / 3);
  assert_int_equal(f.n_top, 2);
  assert_string_equal(f.top[0].id, "A");  // max residue 3.0 at position 1
  assert_int_equal(f.top[0].pos, 1);
  assert_string_equal(f.top[1].id, "B");
  assert_int_equal(f.top[1].pos, 0);
  uint32_t nnz, *ci;
  float *cv;
  assert_int_equal(fs_code_get(scorer_store(s), "B", &nnz, &ci, &cv, &err), 1);
  assert_int_equal(nnz, 2);
  assert_true(ci[1] == 3 && cv[1] == 2.0f);
  free(ci);
  free(cv);
  fs_feat_clear(&f);
  // feature-major view: feature 0 on A and B, 2 on A, 3 on B, 1 nowhere
  fs_csc_t c;
  assert_int_equal(fs_load_csc(scorer_store(s), &c, &err), 0);
  assert_int_equal(c.n_proteins, 2);
  assert_string_equal(c.ids[0], "A");
  assert_int_equal(c.n_features, 4);
  const uint64_t want_ptr[] = {0, 2, 2, 3, 4};
  for (int i = 0; i < 5; i++) assert_int_equal(c.colptr[i], want_ptr[i]);
  assert_true(c.rows[0] == 0 && c.rows[1] == 1 && c.rows[2] == 0 && c.rows[3] == 1);
  assert_true(c.vals[0] == 4.0f / 3 && c.vals[1] == 1.0f && c.vals[3] == 2.0f);
  fs_csc_free(&c);
  // a residue-level batch without pooled codes is rejected
  fb.n_pooled_indptr = 0;
  fb.source_seq = 1;
  assert_true(scorer_apply(s, &fb, &err) < 0);
  scorer_close(&s);
}

// ---- bounds: nothing off the wire is trusted ---------------------------------------------------------
// Before: seq 2^63 hung scorer_apply (the old bitset's `c *= 2` overflowed to 0), 2^40 allocated 128 GB
// or aborted and the applied key was persisted. Now: rejected at once, nothing stored.
static void test_scorer_seq_bounds(void **st) {
  (void)st;
  const char *d = scratch("seq_bounds");
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/db", d);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  tbatch_t b;
  make_batch(&b, 0);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  free_batch(&b);
  assert_int_equal(scorer_commit(s, &err), 0);
  char *before = fx_dump_store(db);
  const uint64_t bad[] = {(uint64_t)1 << 63, (uint64_t)1 << 40, SCORER_MAX_SEQ, UINT64_MAX};
  double t0 = ps_mono_s();
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    make_batch(&b, 1);
    b.fb.source_seq = bad[i];
    scorer_reject_t why = SCORER_REJ_N;
    assert_int_equal(scorer_apply_why(s, &b.fb, &why, &err), PS_EPROTO);
    assert_int_equal(why, SCORER_REJ_SEQ_RANGE);
    free_batch(&b);
  }
  // the announced count: seq 12 of a 12-batch stream, a stream announcing more than 2^32, and a
  // batch announcing another count than the stream's earlier ones
  make_batch(&b, 12);
  b.fb.stream_batches = 12;
  assert_int_equal(scorer_apply(s, &b.fb, &err), PS_EPROTO);
  b.fb.stream_batches = SCORER_MAX_SEQ + 1;
  b.fb.source_seq = 3;
  assert_int_equal(scorer_apply(s, &b.fb, &err), PS_EPROTO);
  free_batch(&b);
  double secs = ps_mono_s() - t0;
  if (secs > 1.0) fail_msg("rejecting 6 out-of-range batches took %.3f s", secs);
  assert_int_equal(scorer_counts(s)->rejected_by[SCORER_REJ_SEQ_RANGE], 6);
  assert_int_equal(scorer_commit(s, &err), 0);
  char *after = fx_dump_store(db);
  assert_string_equal(before, after);  // nothing persisted
  make_batch(&b, 1);
  b.fb.stream_batches = 12;
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  free_batch(&b);
  make_batch(&b, 2);
  b.fb.stream_batches = 13;
  scorer_reject_t why = SCORER_REJ_N;
  assert_int_equal(scorer_apply_why(s, &b.fb, &why, &err), PS_EPROTO);
  assert_int_equal(why, SCORER_REJ_STREAM_BATCHES);
  free_batch(&b);
  // a seq just under the bound is applied without allocating for it, and shows up as a gap
  make_batch(&b, SCORER_MAX_SEQ - 1);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  free_batch(&b);
  scorer_close(&s);  // not committed
  free(before);
  free(after);
}

// Before: any EndOfStream was trusted: next_seq 3 with 8 batches applied completed the stream;
// 2^62 looped ~2^62 times in scorer_missing, was committed, and hung every restart.
static void test_scorer_eos_bounds(void **st) {
  (void)st;
  const char *d = scratch("eos_bounds");
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/db", d);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  for (uint64_t q = 0; q < 8; q++) {
    tbatch_t b;
    make_batch(&b, q);
    b.fb.stream_batches = NB;
    assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
    free_batch(&b);
  }
  double t0 = ps_mono_s();
  assert_int_equal(scorer_note_eos(s, "reader-0", 3, 0, 0, &err), PS_EPROTO);  // below seq 7, applied
  assert_non_null(strstr(err.msg, "below"));
  assert_int_equal(scorer_note_eos(s, "reader-0", (uint64_t)1 << 62, 0, 0, &err), PS_EPROTO);
  assert_int_equal(scorer_note_eos(s, "reader-0", NB + 1, 0, 0, &err), PS_EPROTO);  // over the announced 12
  assert_int_equal(scorer_note_eos(s, "reader-x", SCORER_MAX_SEQ + 1, 0, 0, &err), PS_EPROTO);
  assert_true(ps_mono_s() - t0 < 1.0);
  assert_int_equal(scorer_counts(s)->rejected_by[SCORER_REJ_EOS], 4);
  assert_int_equal(scorer_streams_known(s), 0);
  assert_int_equal(scorer_streams_complete(s), 0);
  assert_int_equal(scorer_commit(s, &err), 0);
  scorer_close(&s);
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  assert_int_equal(scorer_streams_known(s), 0);  // nothing forged was committed
  // an end that looked consistent when it came (8 applied) is undone by a batch past it
  assert_int_equal(scorer_note_eos(s, "reader-0", 8, 0, 0, &err), 0);
  assert_int_equal(scorer_streams_complete(s), 1);
  tbatch_t b;
  make_batch(&b, 9);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  free_batch(&b);
  assert_int_equal(scorer_counts(s)->eos_reopened, 1);
  assert_int_equal(scorer_streams_complete(s), 0);
  assert_int_equal(scorer_streams_known(s), 0);
  // the genuine end: 8 and 10, 11 are missing
  assert_int_equal(scorer_note_eos(s, "reader-0", NB, 0, 0, &err), 0);
  uint64_t seqs[8];
  const char *p = NULL;
  assert_int_equal(scorer_missing(s, 0, &p, seqs, 2), 3);
  assert_true(seqs[0] == 8 && seqs[1] == 10);
  assert_int_equal(scorer_commit(s, &err), 0);
  scorer_close(&s);
}

// A store written by a version that trusted the wire: an end of 2^62 and an applied seq of 2^40
// are ignored at open (counted), so the restart neither hangs nor waits for them.
static void test_scorer_stored_absurd_eos(void **st) {
  (void)st;
  const char *d = scratch("stored_eos");
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/db", d);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  tbatch_t b;
  make_batch(&b, 0);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  free_batch(&b);
  assert_int_equal(scorer_commit(s, &err), 0);
  fs_wb_t *wb = fs_wb_new();
  fs_eos_t e = {(uint64_t)1 << 62, 0, 0};
  fs_wb_put_eos(scorer_store(s), wb, "reader-0", &e);
  fs_wb_put_applied(scorer_store(s), wb, "reader-0", (uint64_t)1 << 40);
  fs_eos_t e2 = {2, 0, 0};
  fs_wb_put_eos(scorer_store(s), wb, "reader-1", &e2);
  assert_int_equal(fs_commit(scorer_store(s), wb, 0, &err), 0);
  fs_wb_free(&wb);
  scorer_close(&s);
  double t0 = ps_mono_s();
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  assert_int_equal(scorer_counts(s)->ignored_at_open, 2);
  assert_int_equal(scorer_streams_known(s), 1);  // reader-1's plausible end is kept
  uint64_t seqs[4];
  const char *p = NULL;
  assert_int_equal(scorer_missing(s, 0, &p, seqs, 4), 2);
  assert_string_equal(p, "reader-1");
  assert_true(ps_mono_s() - t0 < 2.0);
  scorer_close(&s);
}

// Before: the first batch set the store's feature count unchecked: 4e9 aborted (a 2.4 TB
// allocation), 3M was committed and every genuine batch rejected after it.
static void test_scorer_n_features_bound(void **st) {
  (void)st;
  const char *d = scratch("n_features");
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/db", d);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 0};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  const uint32_t bad[] = {4000000000u, 3000000u, SCORER_MAX_FEATURES_DEFAULT + 1, 0};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    tbatch_t b;
    make_batch(&b, 0);
    b.fb.n_features = bad[i];
    scorer_reject_t why = SCORER_REJ_N;
    assert_int_equal(scorer_apply_why(s, &b.fb, &why, &err), PS_EPROTO);
    assert_int_equal(why, SCORER_REJ_N_FEATURES);
    free_batch(&b);
  }
  assert_int_equal(scorer_commit(s, &err), 0);
  assert_int_equal(scorer_meta(s)->n_features, 0);  // not set by a rejected batch
  tbatch_t b;
  make_batch(&b, 0);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);  // the genuine stream goes on
  free_batch(&b);
  assert_int_equal(scorer_commit(s, &err), 0);
  assert_int_equal(scorer_meta(s)->n_features, NF);
  scorer_close(&s);
  // a smaller bound than the store's count: a clear error at open, no allocation
  scorer_opts_t o2 = {db, 4, 0, NF - 1, 0, 0, 0};
  assert_true(scorer_open(&s, &o2, &err) < 0);
  assert_non_null(strstr(err.msg, "max-features"));
  assert_null(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hist_bins),
      cmocka_unit_test(test_top_order_free),
      cmocka_unit_test(test_fixed_point_sums),
      cmocka_unit_test(test_record_errors),
      cmocka_unit_test(test_scorer_order_free_exactly_once),
      cmocka_unit_test(test_scorer_rejects_and_missing),
      cmocka_unit_test(test_scorer_residue_level),
      cmocka_unit_test(test_scorer_seq_bounds),
      cmocka_unit_test(test_scorer_eos_bounds),
      cmocka_unit_test(test_scorer_stored_absurd_eos),
      cmocka_unit_test(test_scorer_n_features_bound),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
