// The encoder stage's core: TopK codes over several column blocks and threads equal a naive
// top-k; its FeatureBatches equal a direct sae_enc encode; residue pooling (mean, max) and neuron
// mode match a hand computation; encoder_handle checks the stream bounds and the dimension.
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

#include "encoder.h"
#include "fixture.h"
#include "pool.h"
#include "wire.h"

// A fresh directory under the group's scratch directory (tests/unit/fixture.h removes it all).
static const char *scratch(const char *name) {
  static char d[PATH_MAX];
  fx_path(d, sizeof d, name);
  assert_int_equal(mkdir(d, 0700), 0);
  return d;
}

// ---- encoder --------------------------------------------------------------------------------------
// A TopK SAE with encoder weights in [-1, 1] from a xorshift seeded with seed.
static sae_t *random_topk_sae(int d_in, int d_sae, int k, uint64_t seed) {
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = SAE_TOPK;
  c.d_in = c.d_out = d_in;
  c.d_sae = d_sae;
  c.k = k;
  sae_t *s = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_new(&s, &c, &err), 0);
  uint64_t x = seed;
  for (int64_t i = 0; i < (int64_t)d_in * d_sae; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s->W_encT[i] = (float)((int64_t)(x >> 40) % 2001 - 1000) / 1000.0f;
  }
  return s;
}

static void save_sae(const char *dir, int d_in, int d_sae, int k) {
  sae_t *s = random_topk_sae(d_in, d_sae, k, 7);
  memcpy(s->W_dec, s->W_encT, (size_t)d_in * d_sae * sizeof *s->W_dec);
  ps_err_t err = {0};
  mkdir(dir, 0755);
  assert_int_equal(sae_save(s, dir, 1.0f, 1.0f, &err), 0);
  sae_free(&s);
}

// TopK encoding over several column blocks (d_sae > 1024) and threads: bitwise the same for 1, 2 and
// 3 threads, and the same latents as a plain double-precision top-k of x W_enc^T + b_enc.
static void test_topk_blocks_vs_naive(void **st) {
  (void)st;
  enum { DI = 24, DS = 2600, K = 9, N = 70 };
  sae_t *s = random_topk_sae(DI, DS, K, 11);
  ps_err_t err = {0};
  for (int j = 0; j < DS; j++) s->b_enc[j] = -0.5f + 0.001f * (float)(j % 97);
  float *x = malloc(sizeof(float) * N * DI);
  for (int i = 0; i < N * DI; i++) x[i] = sinf((float)i * 0.71f) * 1.3f;
  sae_codes_t ref = {0};
  for (int nt = 1; nt <= 3; nt++) {
    ps_pool_t *pool = nt > 1 ? ps_pool_new(nt) : NULL;
    sae_enc_t *se = NULL;
    sae_codes_t cc = {0};
    assert_int_equal(sae_enc_new(&se, s, pool, 64, &err), 0);  // two chunks
    assert_int_equal(sae_enc_run(se, x, N, &cc, &err), 0);
    assert_int_equal(cc.n_rows, N);
    if (nt == 1) {
      ref = cc;
      // naive: every row has K active latents (the bias keeps many positive), indices ascending,
      // the same set as a double-precision top-k (no near-ties in this data), values within 1e-4
      for (int i = 0; i < N; i++) {
        assert_int_equal(cc.indptr[i + 1] - cc.indptr[i], K);
        double pre[DS];
        for (int j = 0; j < DS; j++) {
          double a = s->b_enc[j];
          for (int q = 0; q < DI; q++) a += (double)x[i * DI + q] * s->W_encT[(int64_t)j * DI + q];
          pre[j] = a;
        }
        for (int64_t p = cc.indptr[i]; p < cc.indptr[i + 1]; p++) {
          int32_t j = cc.indices[p];
          if (p > cc.indptr[i]) assert_true(j > cc.indices[p - 1]);
          assert_true(fabs(pre[j] - cc.values[p]) < 1e-4);
          int above = 0;  // exactly K-1 others above it... at most K-1 entries beat a selected one
          for (int q = 0; q < DS; q++) above += pre[q] > pre[j] + 1e-6;
          assert_true(above < K);
        }
      }
    } else {
      assert_memory_equal(ref.indptr, cc.indptr, (N + 1) * sizeof(int64_t));
      assert_memory_equal(ref.indices, cc.indices, (size_t)ref.indptr[N] * sizeof(int32_t));
      assert_memory_equal(ref.values, cc.values, (size_t)ref.indptr[N] * sizeof(float));
      sae_codes_free(&cc);
    }
    sae_enc_free(&se);
    ps_pool_destroy(&pool);
  }
  sae_codes_free(&ref);
  free(x);
  sae_free(&s);
}

static void test_encoder_matches_direct(void **st) {
  (void)st;
  const char *d = scratch("encoder_direct");
  char dir[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/sae", d);
  enum { DI = 12, DS = 40, K = 4, N = 9 };
  save_sae(dir, DI, DS, K);
  float x[N * DI];
  for (int i = 0; i < N * DI; i++) x[i] = sinf((float)i * 0.37f) + 0.1f * (float)(i % 5);
  char *ids[N];
  for (int i = 0; i < N; i++) {
    ids[i] = malloc(8);
    snprintf(ids[i], 8, "p%d", i);
  }
  encoder_opts_t eo = {0};
  eo.sae_dir = dir;
  eo.threads = 2;
  eo.chunk_rows = 4;  // several chunks per batch
  encoder_t *e = NULL;
  ps_err_t err = {0};
  assert_int_equal(encoder_new(&e, &eo, &err), 0);
  Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
  eb.n_protein_ids = N;
  eb.protein_ids = ids;
  eb.dim = DI;
  eb.n_rows = N;
  eb.rows.data = (uint8_t *)x;
  eb.rows.len = sizeof x;
  Protsae__FeatureBatch fb;
  assert_int_equal(encoder_encode(e, &eb, &fb, &err), 0);
  // direct encode
  sae_t *s = NULL;
  sae_enc_t *se = NULL;
  sae_codes_t c = {0};
  assert_int_equal(sae_load(&s, dir, &err), 0);
  assert_int_equal(sae_enc_new(&se, s, NULL, 4, &err), 0);
  assert_int_equal(sae_enc_run(se, x, N, &c, &err), 0);
  assert_int_equal(fb.n_rows, N);
  assert_int_equal(fb.n_features, DS);
  assert_int_equal(fb.n_values, (size_t)c.indptr[N]);
  assert_true(fb.n_values > 0);
  for (int r = 0; r <= N; r++) assert_int_equal(fb.indptr[r], (uint32_t)c.indptr[r]);
  for (size_t j = 0; j < fb.n_values; j++) {
    assert_int_equal(fb.indices[j], (uint32_t)c.indices[j]);
    assert_memory_equal(&fb.values[j], &c.values[j], sizeof(float));
  }
  // dimension mismatch and NaN: named errors
  eb.dim = DI - 1;
  eb.rows.len = (size_t)N * (DI - 1) * 4;
  assert_int_equal(encoder_encode(e, &eb, &fb, &err), PS_EDIM);
  eb.dim = DI;
  eb.rows.len = sizeof x;
  x[3 * DI + 2] = NAN;
  assert_true(encoder_encode(e, &eb, &fb, &err) < 0);
  assert_non_null(strstr(err.msg, "row 3"));
  // a chunk big enough to be split between threads: 1, 2 and 3 threads give bitwise the same codes
  enum { N2 = 701 };
  float *x2 = malloc(sizeof(float) * N2 * DI);
  for (int i = 0; i < N2 * DI; i++) x2[i] = sinf((float)i * 0.113f) * 1.7f + 0.05f * (float)(i % 11);
  sae_codes_t c1 = {0};
  sae_enc_t *se1 = NULL;
  assert_int_equal(sae_enc_new(&se1, s, NULL, 600, &err), 0);
  assert_int_equal(sae_enc_run(se1, x2, N2, &c1, &err), 0);
  for (int nt = 2; nt <= 3; nt++) {
    ps_pool_t *pool = ps_pool_new(nt);
    sae_enc_t *se2 = NULL;
    sae_codes_t c2 = {0};
    assert_int_equal(sae_enc_new(&se2, s, pool, 600, &err), 0);
    assert_int_equal(sae_enc_run(se2, x2, N2, &c2, &err), 0);
    assert_int_equal(c2.n_rows, N2);
    assert_memory_equal(c1.indptr, c2.indptr, (N2 + 1) * sizeof(int64_t));
    assert_memory_equal(c1.indices, c2.indices, (size_t)c1.indptr[N2] * sizeof(int32_t));
    assert_memory_equal(c1.values, c2.values, (size_t)c1.indptr[N2] * sizeof(float));
    sae_codes_free(&c2);
    sae_enc_free(&se2);
    ps_pool_destroy(&pool);
  }
  sae_codes_free(&c1);
  sae_enc_free(&se1);
  free(x2);
  sae_codes_free(&c);
  sae_enc_free(&se);
  sae_free(&s);
  encoder_destroy(&e);
  for (int i = 0; i < N; i++) free(ids[i]);
}

static void test_encoder_residue_pooling_and_neurons(void **st) {
  (void)st;
  // neuron mode: features = dims, ReLU; residue level: 2 proteins of 3 and 1 residues
  float x[4 * 3] = {1, -1, 2,  /**/ 3, 0, -2, /**/ 0.5f, 0, 4, /**/ -1, 5, 0};
  char *ids[] = {"A", "B"};
  uint32_t offs[] = {0, 3, 4};
  for (int pool = 0; pool < 2; pool++) {
    encoder_opts_t eo = {0};
    eo.neurons = 1;
    eo.pooling = pool ? ENC_POOL_MAX : ENC_POOL_MEAN;
    encoder_t *e = NULL;
    ps_err_t err = {0};
    assert_int_equal(encoder_new(&e, &eo, &err), 0);
    Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
    eb.n_protein_ids = 2;
    eb.protein_ids = ids;
    eb.level = PROTSAE__LEVEL__LEVEL_RESIDUE;
    eb.dim = 3;
    eb.n_rows = 4;
    eb.rows.data = (uint8_t *)x;
    eb.rows.len = sizeof x;
    eb.n_residue_offsets = 3;
    eb.residue_offsets = offs;
    Protsae__FeatureBatch fb;
    assert_int_equal(encoder_encode(e, &eb, &fb, &err), 0);
    assert_true(fb.neurons);
    assert_int_equal(fb.n_features, 3);
    assert_int_equal(fb.n_values, 6);  // positives: 1,2 | 3 | 0.5,4 | 5
    assert_int_equal(fb.indptr[1], 2);
    assert_int_equal(fb.n_pooled_indptr, 3);
    // protein A: dims 0 (1, 3, 0.5) and 2 (2, 4); B: dim 1 (5)
    assert_int_equal(fb.pooled_indptr[1], 2);
    assert_int_equal(fb.pooled_indices[0], 0);
    assert_int_equal(fb.pooled_indices[1], 2);
    if (pool) {
      assert_true(fb.pooled_values[0] == 3.0f && fb.pooled_values[1] == 4.0f);
    } else {
      assert_true(fabsf(fb.pooled_values[0] - 4.5f / 3) < 1e-6f);
      assert_true(fabsf(fb.pooled_values[1] - 2.0f) < 1e-6f);
    }
    assert_int_equal(fb.pooled_indices[2], 1);
    assert_true(fb.pooled_values[2] == 5.0f);
    assert_true(wire_check_feature_batch(&fb, &err) == 0);
    encoder_destroy(&e);
  }
}

// ---- bounds: nothing off the wire is trusted ---------------------------------------------------------
// The encoder stage's checks: seq against the announced count, dim against the SAE's d_in (here
// neuron mode: the first batch's, at most max_dim).
static void test_encoder_handle_bounds(void **st) {
  (void)st;
  encoder_opts_t eo = {0};
  eo.neurons = 1;
  eo.max_dim = 16;
  encoder_t *e = NULL;
  ps_err_t err = {0};
  assert_int_equal(encoder_new(&e, &eo, &err), 0);
  float x[2 * 32] = {1, 2, 3};
  char *ids[] = {"A", "B"};
  Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
  eb.n_protein_ids = 2;
  eb.protein_ids = ids;
  eb.n_rows = 2;
  eb.dim = 32;
  eb.rows.data = (uint8_t *)x;
  eb.rows.len = 2 * 32 * 4;
  eb.stream_batches = 4;
  Protsae__Envelope env;
  wire_envelope_init(&env, "run", "reader-0", 0);
  env.body_case = PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH;
  env.embedding_batch = &eb;
  Protsae__FeatureBatch fb;
  enc_reject_t why = ENC_REJ_N;
  assert_int_equal(encoder_handle(e, &env, &fb, &why, &err), PS_EDIM);  // 32 > max_dim
  assert_int_equal(why, ENC_REJ_DIM);
  eb.dim = 8;
  eb.rows.len = 2 * 8 * 4;
  env.seq = 4;
  assert_int_equal(encoder_handle(e, &env, &fb, &why, &err), PS_EPROTO);
  assert_int_equal(why, ENC_REJ_SEQ_RANGE);
  env.seq = (uint64_t)1 << 63;
  eb.stream_batches = 0;
  assert_int_equal(encoder_handle(e, &env, &fb, &why, &err), PS_EPROTO);
  env.seq = 3;
  eb.stream_batches = 4;
  assert_int_equal(encoder_handle(e, &env, &fb, &why, &err), 0);
  assert_true(fb.source_seq == 3 && fb.stream_batches == 4 && !strcmp(fb.source_producer, "reader-0"));
  assert_int_equal(fb.n_features, 8);
  eb.dim = 4;  // the stream's dim is 8 from now on
  eb.rows.len = 2 * 4 * 4;
  assert_int_equal(encoder_handle(e, &env, &fb, &why, &err), PS_EDIM);
  encoder_destroy(&e);
}
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topk_blocks_vs_naive),
      cmocka_unit_test(test_encoder_matches_direct),
      cmocka_unit_test(test_encoder_residue_pooling_and_neurons),
      cmocka_unit_test(test_encoder_handle_bounds),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
