// The sharded feature store: a FeatureBatch cut by feature range (stages/scorer/split.h) keeps
// every row, puts each entry in the one shard that owns its feature, in order, at protein and
// residue level (pooled codes too), and refuses entries past n_features; N shard scorers fed the
// cut batches give a store that reads, through fs_open of the directory, byte for byte as one
// scorer's store (fs_dump); a shard refuses an entry outside its range; the layout file is
// checked (another shard count, a malformed file name the store).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "featstore.h"
#include "fixture.h"
#include "fsdump.h"
#include "scorer.h"
#include "split.h"

// A fresh path under the scratch directory (fixture.h removes it all): base-N.
static const char *fx_path_tmp(const char *base) {
  static char buf[4096];
  static int n;
  char name[256];
  snprintf(name, sizeof name, "%s-%d", base, n++);
  return fx_path(buf, sizeof buf, name);
}

static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
  rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
  return (uint32_t)(rs % n);
}

typedef struct gen {
  Protsae__FeatureBatch fb;
  char *ids[64], idbuf[64][16];
  uint32_t indptr[257], indices[256 * 40], pindptr[65], pindices[64 * 40], offsets[65];
  float values[256 * 40], pvalues[64 * 40];
} gen_t;

// A random CSR over rows x nf (ascending indices per row, values > 0).
static uint32_t random_csr(uint32_t rows, uint32_t nf, uint32_t *indptr, uint32_t *idx, float *val) {
  uint32_t nnz = 0;
  indptr[0] = 0;
  for (uint32_t r = 0; r < rows; r++) {
    for (uint32_t f = 0; f < nf; f++)
      if (rnd(100) < 12 && nnz < 40 * rows) idx[nnz] = f, val[nnz++] = 0.01f + (float)rnd(1000) / 100.0f;
    indptr[r + 1] = nnz;
  }
  return nnz;
}

// Batch seq of n_prot proteins; residue: 1-4 residues each, with pooled codes.
static void make_batch(gen_t *g, uint64_t seq, uint32_t n_prot, uint32_t nf, int residue) {
  Protsae__FeatureBatch init = PROTSAE__FEATURE_BATCH__INIT;
  g->fb = init;
  for (uint32_t p = 0; p < n_prot; p++) {
    snprintf(g->idbuf[p], sizeof g->idbuf[p], "P%03llu_%02u", (unsigned long long)seq, p);
    g->ids[p] = g->idbuf[p];
  }
  uint32_t rows = n_prot;
  if (residue) {
    g->offsets[0] = 0;
    for (uint32_t p = 0; p < n_prot; p++) g->offsets[p + 1] = g->offsets[p] + 1 + rnd(4);
    rows = g->offsets[n_prot];
    g->fb.level = PROTSAE__LEVEL__LEVEL_RESIDUE;
    g->fb.n_residue_offsets = n_prot + 1;
    g->fb.residue_offsets = g->offsets;
    uint32_t pn = random_csr(n_prot, nf, g->pindptr, g->pindices, g->pvalues);
    g->fb.n_pooled_indptr = n_prot + 1;
    g->fb.pooled_indptr = g->pindptr;
    g->fb.n_pooled_indices = g->fb.n_pooled_values = pn;
    g->fb.pooled_indices = g->pindices;
    g->fb.pooled_values = g->pvalues;
  }
  uint32_t nnz = random_csr(rows, nf, g->indptr, g->indices, g->values);
  g->fb.n_protein_ids = n_prot;
  g->fb.protein_ids = g->ids;
  g->fb.n_rows = rows;
  g->fb.n_features = nf;
  g->fb.n_indptr = rows + 1;
  g->fb.indptr = g->indptr;
  g->fb.n_indices = g->fb.n_values = nnz;
  g->fb.indices = g->indices;
  g->fb.values = g->values;
  g->fb.source_producer = "reader-0";
  g->fb.source_seq = seq;
  g->fb.stream_batches = 6;
}

// Each part holds exactly the whole's entries of its range, row by row, in order.
static void check_cut(const uint32_t *wp, const uint32_t *wi, const float *wv, size_t rows, Protsae__FeatureBatch **parts,
                      uint32_t n, uint32_t nf, int pooled) {
  for (size_t r = 0; r < rows; r++) {
    uint32_t j = wp[r];
    for (uint32_t k = 0; k < n; k++) {
      uint32_t lo, hi;
      fs_shard_range(k, n, nf, &lo, &hi);
      const uint32_t *pp = pooled ? parts[k]->pooled_indptr : parts[k]->indptr;
      const uint32_t *pi = pooled ? parts[k]->pooled_indices : parts[k]->indices;
      const float *pv = pooled ? parts[k]->pooled_values : parts[k]->values;
      for (uint32_t e = pp[r]; e < pp[r + 1]; e++, j++) {
        assert_true(pi[e] >= lo && pi[e] < hi);
        assert_int_equal(pi[e], wi[j]);
        assert_true(pv[e] == wv[j]);
      }
    }
    assert_int_equal(j, wp[r + 1]);  // every entry of the row, once
  }
}

static void test_cut(void **state) {
  (void)state;
  static gen_t g;
  const uint32_t nfs[] = {3, 10, 301};
  for (int residue = 0; residue < 2; residue++)
    for (size_t a = 0; a < 3; a++)
      for (uint32_t n = 1; n <= 5; n++) {
        make_batch(&g, 0, 1 + rnd(60), nfs[a], residue);
        fb_split_t *sp = fb_split_new(n);
        Protsae__FeatureBatch *parts[5];
        ps_err_t err = {0};
        assert_int_equal(fb_split_run(sp, &g.fb, parts, &err), 0);
        for (uint32_t k = 0; k < n; k++) {
          assert_int_equal(parts[k]->n_rows, g.fb.n_rows);
          assert_int_equal(parts[k]->n_protein_ids, g.fb.n_protein_ids);
          assert_int_equal(parts[k]->n_features, nfs[a]);
          assert_int_equal(parts[k]->indptr[g.fb.n_rows], parts[k]->n_indices);
        }
        check_cut(g.fb.indptr, g.fb.indices, g.fb.values, g.fb.n_rows, parts, n, nfs[a], 0);
        if (residue) check_cut(g.fb.pooled_indptr, g.fb.pooled_indices, g.fb.pooled_values, g.fb.n_protein_ids, parts, n, nfs[a], 1);
        fb_split_destroy(&sp);
      }
}

static void test_cut_bad(void **state) {
  (void)state;
  static gen_t g;
  make_batch(&g, 0, 10, 10, 0);
  fb_split_t *sp = fb_split_new(3);
  Protsae__FeatureBatch *parts[3];
  ps_err_t err = {0};
  assert_true(g.fb.n_indices > 0);
  g.indices[g.fb.n_indices - 1] = 10;  // == n_features
  assert_true(fb_split_run(sp, &g.fb, parts, &err) < 0);
  assert_non_null(strstr(err.msg, "feature 10"));
  make_batch(&g, 0, 10, 10, 1);
  g.pindptr[g.fb.n_protein_ids] += 1;  // pooled CSR no longer spans its entries
  assert_true(fb_split_run(sp, &g.fb, parts, &err) < 0);
  assert_non_null(strstr(err.msg, "pooled"));
  fb_split_destroy(&sp);
}

// One scorer and n shard scorers fed the same batches (the shards in another order): equal dumps.
static void sharded_vs_one(uint32_t n, uint32_t nf, int residue) {
  char one[4096], dir[4096], sp_path[4096];
  snprintf(one, sizeof one, "%s", fx_path_tmp("one"));
  snprintf(dir, sizeof dir, "%s", fx_path_tmp("sharded"));
  ps_err_t err = {0};
  scorer_t *s1 = NULL, *sh[5] = {0};
  scorer_opts_t o = {one, 4, 0, 0, 0, 0, 3};
  assert_int_equal(scorer_open(&s1, &o, &err), 0);
  assert_int_equal(fs_shards_init(dir, n, &err), 0);
  for (uint32_t k = 0; k < n; k++) {
    fs_shard_path(dir, k, sp_path, sizeof sp_path);
    scorer_opts_t so = {sp_path, 4, 0, 0, k, n, 3};
    assert_int_equal(scorer_open(&sh[k], &so, &err), 0);
  }
  static gen_t g;
  fb_split_t *cut = fb_split_new(n);
  Protsae__FeatureBatch *parts[5];
  for (uint64_t q = 0; q < 6; q++) {
    make_batch(&g, 5 - q, 1 + rnd(30), nf, residue);  // seqs 5..0: order does not matter
    assert_int_equal(scorer_apply(s1, &g.fb, &err), 1);
    assert_int_equal(fb_split_run(cut, &g.fb, parts, &err), 0);
    for (uint32_t k = 0; k < n; k++) assert_int_equal(scorer_apply(sh[n - 1 - k], parts[n - 1 - k], &err), 1);
    if (n > 1 && q == 2 && parts[n - 1]->n_indices) {  // a shard given another shard's part refuses it
      Protsae__FeatureBatch other = *parts[n - 1];
      other.source_producer = "reader-x";
      assert_true(scorer_apply(sh[0], &other, &err) < 0);
      assert_non_null(strstr(err.msg, "not in shard 0's range"));
    }
  }
  assert_int_equal(scorer_note_eos(s1, "reader-0", 6, 0, 0, &err), 0);
  assert_int_equal(scorer_commit(s1, &err), 0);
  for (uint32_t k = 0; k < n; k++) {
    assert_int_equal(scorer_note_eos(sh[k], "reader-0", 6, 0, 0, &err), 0);
    assert_int_equal(scorer_commit(sh[k], &err), 0);
    fs_t *f = NULL;
    size_t complete = 0, known = 0;
    fs_shard_path(dir, k, sp_path, sizeof sp_path);
    assert_int_equal(fs_open(&f, sp_path, FS_OPEN_READONLY, &err), 0);
    assert_int_equal(fs_streams_complete(f, &complete, &known, &err), 0);
    assert_int_equal(complete, 1);
    fs_close(&f);
  }
  scorer_close(&s1);
  for (uint32_t k = 0; k < n; k++) scorer_close(&sh[k]);
  fb_split_destroy(&cut);
  char *a = fx_dump_store(one), *b = fx_dump_store(dir);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "\ncode\t"));
  free(a);
  free(b);
  // a store keeps its shard count
  assert_true(fs_shards_init(dir, n + 1, &err) < 0);
  assert_non_null(strstr(err.msg, "shards"));
}

static void test_sharded_store(void **state) {
  (void)state;
  sharded_vs_one(2, 10, 0);
  sharded_vs_one(3, 301, 0);
  sharded_vs_one(4, 3, 0);  // more shards than some ranges: empty shards
  sharded_vs_one(3, 50, 1);
}

static void test_layout_file(void **state) {
  (void)state;
  const char *dir = fx_path_tmp("bad-layout");
  ps_err_t err = {0};
  assert_int_equal(fs_shards_init(dir, 2, &err), 0);
  char p[4096];
  snprintf(p, sizeof p, "%s/shards", dir);
  FILE *f = fopen(p, "w");
  fputs("protsae-shards 1\nshards zero\n", f);
  fclose(f);
  uint32_t n = 0;
  assert_true(fs_shards_count(dir, &n, &err) < 0);
  assert_non_null(strstr(err.msg, p));
  fs_t *fs = NULL;
  assert_true(fs_open(&fs, dir, FS_OPEN_READONLY, &err) < 0);  // the store names its layout file
  assert_non_null(strstr(err.msg, "shards"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cut),
      cmocka_unit_test(test_cut_bad),
      cmocka_unit_test(test_sharded_store),
      cmocka_unit_test(test_layout_file),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
