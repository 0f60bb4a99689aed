// Residue codes (featstore.h "residue codes"): the scorer keeps, per protein and feature active at
// one of its residues, the top R residues by value (ties to the lower position) sorted by
// (feature, pos). The stored code equals a brute-force top-R over the dense batch, read through
// fs_rcode_get and fs_rcode_each, from one scorer's store and from 2 and 3 shard scorers fed the
// cut batches (fs_open of the directory merges the parts); R = 0 keeps none; a replayed batch
// changes nothing; a row naming a feature twice keeps its larger value once; broken records are
// refused naming the protein and offset; the meta record before residue_top still reads (0).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "featstore.h"
#include "featstore_priv.h"
#include "fixture.h"
#include "fsdump.h"
#include "rbatch_fixture.h"
#include "scorer.h"
#include "split.h"

#define NF 23
#define MAXP 24
#define MAXL 40

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
  rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
  return (uint32_t)(rs % n);
}

typedef struct batch {
  Protsae__FeatureBatch fb;
  char *ids[MAXP], idbuf[MAXP][16];
  uint32_t len[MAXP], offsets[MAXP + 1];
  float dense[MAXP][MAXL][NF];  // the truth the test computes from
  uint32_t indptr[MAXP * MAXL + 1], indices[MAXP * MAXL * NF], pindptr[MAXP + 1], pindices[MAXP * NF];
  float values[MAXP * MAXL * NF], pvalues[MAXP * NF];
} batch_t;

// n proteins of 1..MAXL residues; values from a small set so ties happen; pooled = max.
static void make(batch_t *b, uint64_t seq, uint32_t n) {
  memset(b->dense, 0, sizeof b->dense);
  uint32_t rows = 0, nnz = 0, pn = 0;
  b->offsets[0] = 0;
  b->indptr[0] = 0;
  b->pindptr[0] = 0;
  for (uint32_t p = 0; p < n; p++) {
    snprintf(b->idbuf[p], sizeof b->idbuf[p], "Q%02llu_%02u", (unsigned long long)seq, p);
    b->ids[p] = b->idbuf[p];
    b->len[p] = 1 + rnd(MAXL);
    float pmax[NF] = {0};
    for (uint32_t r = 0; r < b->len[p]; r++, rows++) {
      for (uint32_t f = 0; f < NF; f++)
        if (rnd(100) < 25 + (f % 5) * 10) {
          float v = 0.25f * (float)(1 + rnd(6));
          b->dense[p][r][f] = v;
          b->indices[nnz] = f;
          b->values[nnz++] = v;
          if (v > pmax[f]) pmax[f] = v;
        }
      b->indptr[rows + 1] = nnz;
    }
    b->offsets[p + 1] = rows;
    for (uint32_t f = 0; f < NF; f++)
      if (pmax[f] > 0) b->pindices[pn] = f, b->pvalues[pn++] = pmax[f];
    b->pindptr[p + 1] = pn;
  }
  rb_arrays_t a = {n, NF, b->ids, b->offsets, b->indptr, b->indices, b->values, b->pindptr, b->pindices, b->pvalues};
  rb_batch(&b->fb, &a, seq, 3);
}

// Brute force: for every feature, pick R times the largest remaining value (lowest position on
// ties), then list the picks in position order; compare with rc entry by entry.
static void check_protein(const batch_t *b, uint32_t p, uint32_t R, const fs_rcode_t *rc) {
  assert_int_equal(rc->len, b->len[p]);
  uint32_t e = 0;
  for (uint32_t f = 0; f < NF; f++) {
    uint8_t taken[MAXL] = {0};
    for (uint32_t k = 0; k < R; k++) {
      int best = -1;
      for (uint32_t r = 0; r < b->len[p]; r++)
        if (!taken[r] && b->dense[p][r][f] > 0 && (best < 0 || b->dense[p][r][f] > b->dense[p][best][f])) best = (int)r;
      if (best < 0) break;
      taken[best] = 1;
    }
    for (uint32_t r = 0; r < b->len[p]; r++)
      if (taken[r]) {
        assert_true(e < rc->n);
        if (rc->feat[e] != f || rc->pos[e] != r || rc->val[e] != b->dense[p][r][f])
          fail_msg("protein %s entry %u: stored %u:%u:%g, brute force %u:%u:%g", b->ids[p], e, rc->feat[e], rc->pos[e],
                   (double)rc->val[e], f, r, (double)b->dense[p][r][f]);
        e++;
      }
  }
  assert_int_equal(rc->n, e);
}

static const char *tmp_path(const char *base) {
  static char buf[4096];
  static int n;
  char name[128];
  snprintf(name, sizeof name, "%s-%d", base, n++);
  return fx_path(buf, sizeof buf, name);
}

struct each_ctx {
  batch_t *b;
  uint32_t nb, R, seen;
};
static int each_fn(const char *id, const fs_rcode_t *rc, void *c) {
  struct each_ctx *x = c;
  for (uint32_t q = 0; q < x->nb; q++)
    for (uint32_t p = 0; p < x->b[q].fb.n_protein_ids; p++)
      if (!strcmp(x->b[q].ids[p], id)) {
        check_protein(&x->b[q], p, x->R, rc);
        x->seen++;
        return 0;
      }
  fail_msg("unknown protein %s", id);
  return -1;
}

// Every protein of the batches, through get and each, against the brute force.
static void check_store(const char *path, batch_t *b, uint32_t nb, uint32_t R) {
  fs_t *fs = NULL;
  ps_err_t err = {0};
  assert_int_equal(fs_open(&fs, path, FS_OPEN_READONLY, &err), 0);
  fs_meta_t m;
  assert_int_equal(fs_meta_get(fs, &m, &err), 1);
  assert_int_equal(m.residue_top, R);
  uint32_t total = 0;
  for (uint32_t q = 0; q < nb; q++)
    for (uint32_t p = 0; p < b[q].fb.n_protein_ids; p++, total++) {
      fs_rcode_t rc;
      void *owned = NULL;
      assert_int_equal(fs_rcode_get(fs, b[q].ids[p], &rc, &owned, &err), 1);
      check_protein(&b[q], p, R, &rc);
      free(owned);
    }
  struct each_ctx x = {b, nb, R, 0};
  assert_int_equal(fs_rcode_each(fs, each_fn, &x, &err), 0);
  assert_int_equal(x.seen, total);
  fs_rcode_t rc;
  void *owned = NULL;
  assert_int_equal(fs_rcode_get(fs, "absent", &rc, &owned, &err), 0);
  assert_null(owned);
  fs_close(&fs);
}

// One scorer and n shard scorers (n = 0: none) fed the same three batches.
static void run(uint32_t R, uint32_t n) {
  static batch_t b[3];
  char one[4096], dir[4096], sp[4096];
  snprintf(one, sizeof one, "%s", tmp_path("one"));
  snprintf(dir, sizeof dir, "%s", tmp_path("sharded"));
  ps_err_t err = {0};
  scorer_t *s1 = NULL, *sh[3] = {0};
  scorer_opts_t o = {one, 4, 0, 0, 0, 0, R};
  assert_int_equal(scorer_open(&s1, &o, &err), 0);
  if (n) assert_int_equal(fs_shards_init(dir, n, &err), 0);
  for (uint32_t k = 0; k < n; k++) {
    fs_shard_path(dir, k, sp, sizeof sp);
    scorer_opts_t so = {sp, 4, 0, 0, k, n, R};
    assert_int_equal(scorer_open(&sh[k], &so, &err), 0);
  }
  fb_split_t *cut = n ? fb_split_new(n) : NULL;
  Protsae__FeatureBatch *parts[3];
  for (uint64_t q = 0; q < 3; q++) {
    make(&b[q], q, 1 + rnd(MAXP));
    assert_int_equal(scorer_apply(s1, &b[q].fb, &err), 1);
    if (q == 1) {  // committed, then replayed: nothing changes
      assert_int_equal(scorer_commit(s1, &err), 0);
      assert_int_equal(scorer_apply(s1, &b[q].fb, &err), 0);
    }
    if (!n) continue;
    assert_int_equal(fb_split_run(cut, &b[q].fb, parts, &err), 0);
    for (uint32_t k = 0; k < n; k++) assert_int_equal(scorer_apply(sh[k], parts[k], &err), 1);
  }
  assert_int_equal(scorer_commit(s1, &err), 0);
  scorer_close(&s1);
  for (uint32_t k = 0; k < n; k++) {
    assert_int_equal(scorer_commit(sh[k], &err), 0);
    scorer_close(&sh[k]);
  }
  fb_split_destroy(&cut);
  check_store(one, b, 3, R);
  if (!n) return;
  check_store(dir, b, 3, R);
  char *a = fx_dump_store(one), *d = fx_dump_store(dir);
  assert_string_equal(a, d);  // merged byte for byte as one scorer's, residue codes included
  assert_non_null(strstr(a, "\nrcode\t"));
  free(a);
  free(d);
}

static void test_top_r_one_store(void **state) {
  (void)state;
  run(1, 0);
  run(3, 0);
  run(8, 0);
  run(0, 0);  // none kept: every protein has its length and no entries
  run(MAXL, 0);  // R covers every residue: the whole residue code
}

static void test_top_r_shards(void **state) {
  (void)state;
  run(3, 2);
  run(8, 2);
  run(2, 3);
}

// A row naming a feature twice (the wire does not refuse it): one entry, the larger value.
static void test_duplicate_feature(void **state) {
  (void)state;
  static batch_t b;
  make(&b, 0, 1);
  b.fb.stream_batches = 1;
  // protein 0, residue 0: entries f=5 (0.5) and f=5 (2.0) only
  uint32_t rows = b.fb.n_rows;
  b.indices[0] = 5, b.values[0] = 0.5f;
  b.indices[1] = 5, b.values[1] = 2.0f;
  uint32_t shift = b.indptr[1];
  memmove(b.indices + 2, b.indices + shift, (b.indptr[rows] - shift) * sizeof *b.indices);
  memmove(b.values + 2, b.values + shift, (b.indptr[rows] - shift) * sizeof *b.values);
  for (uint32_t r = 1; r <= rows; r++) b.indptr[r] = b.indptr[r] - shift + 2;
  b.fb.n_indices = b.fb.n_values = b.indptr[rows];
  const char *db = tmp_path("dup");
  ps_err_t err = {0};
  scorer_t *s = NULL;
  scorer_opts_t o = {db, 4, 0, 0, 0, 0, 4};
  assert_int_equal(scorer_open(&s, &o, &err), 0);
  assert_int_equal(scorer_apply(s, &b.fb, &err), 1);
  assert_int_equal(scorer_commit(s, &err), 0);
  fs_rcode_t rc;
  void *owned = NULL;
  assert_int_equal(fs_rcode_get(scorer_store(s), b.ids[0], &rc, &owned, &err), 1);
  uint32_t found = 0;
  for (uint32_t i = 0; i < rc.n; i++)
    if (rc.feat[i] == 5 && rc.pos[i] == 0) {
      found++;
      assert_true(rc.val[i] == 2.0f);
    }
  assert_int_equal(found, 1);
  free(owned);
  scorer_close(&s);
}

static void test_codec_broken(void **state) {
  (void)state;
  uint32_t feat[3] = {1, 1, 4}, pos[3] = {0, 3, 2};
  float val[3] = {1, 2, 3};
  fs_rcode_t rc = {5, 3, feat, pos, val}, back;
  uint8_t *buf = NULL;
  size_t cap = 0, n = fs_rcode_encode(&rc, &buf, &cap);
  assert_int_equal(n, 8 + 3 * 12);
  void *owned = NULL;
  ps_err_t err = {0};
  assert_int_equal(fs_rcode_decode(buf, n, &back, &owned, "P1", &err), 0);
  assert_int_equal(back.n, 3);
  assert_int_equal(back.pos[1], 3);
  assert_true(back.val[2] == 3.0f);
  free(owned);
  assert_true(fs_rcode_decode(buf, n - 1, &back, &owned, "P1", &err) < 0);  // truncated
  assert_non_null(strstr(err.msg, "P1"));
  assert_null(owned);
  pos[1] = 0;  // (1, 0) twice: not ascending
  n = fs_rcode_encode(&rc, &buf, &cap);
  assert_true(fs_rcode_decode(buf, n, &back, &owned, "P2", &err) < 0);
  assert_non_null(strstr(err.msg, "entry 1"));
  assert_non_null(strstr(err.msg, "offset 20"));
  pos[1] = 5;  // == len
  n = fs_rcode_encode(&rc, &buf, &cap);
  assert_true(fs_rcode_decode(buf, n, &back, &owned, "P3", &err) < 0);
  assert_non_null(strstr(err.msg, "length"));
  free(buf);
}

// The meta record written before residue_top ("PSM1", 60 bytes) still reads, as residue_top 0.
static void test_meta_v1(void **state) {
  (void)state;
  fs_meta_t m = {FS_FORMAT, 10, 4, 1, 0, 0, 7, 70, 2, 30, 8}, back;
  uint8_t b[FS_META_LEN];
  fs_meta_encode(&m, b);
  assert_int_equal(fs_meta_decode(&back, b, FS_META_LEN), 0);
  assert_int_equal(back.residue_top, 8);
  assert_int_equal(back.nnz, 30);
  b[3] = '1';  // "PSM1"
  assert_true(fs_meta_decode(&back, b, FS_META_LEN) < 0);  // a v1 magic is 60 bytes long
  assert_int_equal(fs_meta_decode(&back, b, FS_META_LEN_V1), 0);
  assert_int_equal(back.residue_top, 0);
  assert_int_equal(back.residues, 70);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_top_r_one_store), cmocka_unit_test(test_top_r_shards),
      cmocka_unit_test(test_duplicate_feature), cmocka_unit_test(test_codec_broken), cmocka_unit_test(test_meta_v1),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
