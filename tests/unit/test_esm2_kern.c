// The ESM2 engine's own kernels and its bfloat16 path: rounding to bf16, the packed weight
// layout, the AVX-512 BF16 projection kernel and the AVX-512F attention kernels against plain
// references on odd shapes (skipped without the CPU feature), the vectorized LayerNorm, the
// run-time fallbacks (features turned off: bf16 runs as float32 bit for bit; attention through
// sgemm within float rounding), and the bf16 forward on ../shared/testvectors/esm2-tiny: cosine
// of mean embeddings vs float32 >= 0.9999 on every layer.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"

#include "esm2.h"
#include "esm2_attn.h"
#include "esm2_gemm.h"
#include "esm2_kern.h"
#include "hash.h"

static float rnd(uint64_t *s) { return (float)(ps_unit53(ps_splitmix64(s)) * 2.0 - 1.0); }

static void test_round(void **state) {
  (void)state;
  assert_int_equal(esm2_bf16_round(1.0f), 0x3f80);
  assert_int_equal(esm2_bf16_round(-2.0f), 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0)
  assert_int_equal(esm2_bf16_round(1.0f + 0x1p-8f), 0x3f80);
  assert_int_equal(esm2_bf16_round(1.0f + 3 * 0x1p-8f), 0x3f82);
  assert_int_equal(esm2_bf16_round(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  assert_true(esm2_bf16_to_f32(esm2_bf16_round(3.140625f)) == 3.140625f);   // exact in bf16
}

// The packed layout: the reference (which reads the packed panels) equals a plain double
// product of bf16-rounded A and W exactly.
static void test_pack_layout(void **state) {
  (void)state;
  const int M = 5, n = 45, k = 33;
  uint64_t s = 1;
  float *A = malloc(sizeof(float) * M * k), *W = malloc(sizeof(float) * n * k), *C = malloc(sizeof(float) * M * n);
  for (int i = 0; i < M * k; i++) A[i] = rnd(&s);
  for (int i = 0; i < n * k; i++) W[i] = rnd(&s);
  esm2_packed_t p;
  assert_int_equal(esm2_pack_bf16(&p, W, n, k), 0);
  assert_int_equal(p.kp, 17);
  esm2_gemm_bf16_ref(M, A, k, &p, 0.0f, C, n);
  for (int i = 0; i < M; i++)
    for (int c = 0; c < n; c++) {
      double r = 0;
      for (int j = 0; j < k; j++)
        r += (double)esm2_bf16_to_f32(esm2_bf16_round(A[i * k + j])) * esm2_bf16_to_f32(esm2_bf16_round(W[c * k + j]));
      assert_true((float)r == C[i * n + c]);
    }
  esm2_packed_free(&p);
  free(A);
  free(W);
  free(C);
}

// The AVX-512 BF16 kernel vs the reference: odd row counts (tiles of 12 and the rest), columns
// not a multiple of 32 (masked panels), odd k (a zero partner), k beyond one 256-k block, strided
// A and C, beta 0 and 1. Tolerance: float32 accumulation of exact bf16 products.
static void test_kernel_vs_ref(void **state) {
  (void)state;
  if (!esm2_gemm_bf16_cpu()) {
    fprintf(stderr, "no AVX512_BF16 on this CPU: the kernel is not run here (the fallback test is)\n");
    skip();
  }
  const int shapes[][3] = {{1, 1, 1}, {13, 37, 35}, {12, 32, 2}, {97, 33, 64}, {200, 70, 301}, {25, 480, 1920},
                           {7, 1440, 480}, {130, 17, 513}};
  uint64_t s = 2;
  for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
    int M = shapes[t][0], n = shapes[t][1], k = shapes[t][2], lda = k + 3, ldc = n + 5;
    float *A = malloc(sizeof(float) * M * lda), *W = malloc(sizeof(float) * n * k);
    float *C = malloc(sizeof(float) * M * ldc), *R = malloc(sizeof(float) * M * ldc);
    for (int i = 0; i < M * lda; i++) A[i] = rnd(&s);
    for (int i = 0; i < n * k; i++) W[i] = rnd(&s);
    esm2_packed_t p;
    assert_int_equal(esm2_pack_bf16(&p, W, n, k), 0);
    void *scratch = aligned_alloc(64, (esm2_gemm_bf16_scratch(k) * sizeof(float) + 63) / 64 * 64);
    for (int beta = 0; beta <= 1; beta++) {
      for (int i = 0; i < M * ldc; i++) C[i] = R[i] = rnd(&s);
      esm2_gemm_bf16(M, A, lda, &p, (float)beta, C, ldc, scratch);
      esm2_gemm_bf16_ref(M, A, lda, &p, (float)beta, R, ldc);
      double worst = 0;
      for (int i = 0; i < M; i++) {
        for (int c = 0; c < n; c++) {
          // |sum of products| <= k here; float32 accumulation error <= k * k * 2^-24 roughly
          double d = fabs((double)C[i * ldc + c] - R[i * ldc + c]) / (k * 1e-6 + 1e-6);
          if (d > worst) worst = d;
        }
        for (int c = n; c < ldc; c++) assert_true(C[i * ldc + c] == R[i * ldc + c]);   // untouched
      }
      if (worst > 1.0) fprintf(stderr, "shape %d x %d x %d beta %d: error %.3g of the tolerance\n", M, n, k, beta, worst);
      assert_true(worst <= 1.0);
    }
    free(scratch);
    esm2_packed_free(&p);
    free(A);
    free(W);
    free(C);
    free(R);
  }
}

// The attention kernels vs their references: query counts around the 12-row tile, key counts
// around the 32-lane tile, head sizes 16 / 24 / 40 / 64 (masked lanes, several 32-lane chunks),
// strided operands as in the forward (Q, V rows of 3D, ctx rows of D).
static void test_attn_vs_ref(void **state) {
  (void)state;
  if (!esm2_attn_avx512_cpu()) {
    fprintf(stderr, "no AVX-512F on this CPU: the attention kernels are not run here\n");
    skip();
  }
  const int nqs[] = {1, 13, 64}, Ts[] = {1, 17, 33, 250}, hds[] = {16, 24, 40, 64};
  uint64_t s = 3;
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 4; c++) {
        int nq = nqs[a], T = Ts[b], hd = hds[c], ld = 3 * hd + 5, ldkt = T + 7, ldo = hd + 3;
        float *Q = malloc(sizeof(float) * (size_t)(T > nq ? T : nq) * ld), *Kt = malloc(sizeof(float) * hd * ldkt);
        float *S = malloc(sizeof(float) * nq * T), *R = malloc(sizeof(float) * nq * T), *inv = malloc(sizeof(float) * nq);
        float *O = malloc(sizeof(float) * nq * ldo), *OR = malloc(sizeof(float) * nq * ldo);
        for (int i = 0; i < (T > nq ? T : nq) * ld; i++) Q[i] = rnd(&s);
        for (int i = 0; i < hd * ldkt; i++) Kt[i] = rnd(&s);
        for (int i = 0; i < nq; i++) inv[i] = 0.5f + 0.5f * rnd(&s);
        esm2_attn_scores_avx512(nq, T, hd, Q, ld, Kt, ldkt, S, T);
        esm2_attn_scores_ref(nq, T, hd, Q, ld, Kt, ldkt, R, T);
        for (int i = 0; i < nq * T; i++) assert_true(fabs((double)S[i] - R[i]) <= hd * 1e-6);
        for (int i = 0; i < nq * T; i++) S[i] = fabsf(S[i]);   // P >= 0 as after the softmax
        for (int i = 0; i < nq * ldo; i++) O[i] = OR[i] = 7.0f;
        esm2_attn_pv_avx512(nq, T, hd, S, T, Q + 2 * hd, ld, inv, O, ldo);
        esm2_attn_pv_ref(nq, T, hd, S, T, Q + 2 * hd, ld, inv, OR, ldo);
        for (int i = 0; i < nq; i++) {
          for (int d = 0; d < hd; d++) assert_true(fabs((double)O[i * ldo + d] - OR[i * ldo + d]) <= T * hd * 1e-6);
          for (int d = hd; d < ldo; d++) assert_true(O[i * ldo + d] == 7.0f);   // beyond hd: untouched
        }
        free(Q);
        free(Kt);
        free(S);
        free(R);
        free(inv);
        free(O);
        free(OR);
      }
}

static void test_layernorm(void **state) {
  (void)state;
  const int n = 483;
  float x[483], x0[483], bias[483], w[483], b[483], y[483];
  uint64_t s = 4;
  for (int i = 0; i < n; i++) {
    x[i] = x0[i] = 3.0f + rnd(&s);   // an offset: the variance is taken around the mean
    bias[i] = rnd(&s);
    w[i] = rnd(&s);
    b[i] = rnd(&s);
  }
  esm2_kern_layernorm(x, bias, y, w, b, n, 1e-5f);
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) {
    assert_true(x[i] == x0[i] + bias[i]);
    mean += (double)x0[i] + bias[i];
  }
  mean /= n;
  for (int i = 0; i < n; i++) var += ((double)x0[i] + bias[i] - mean) * ((double)x0[i] + bias[i] - mean);
  double rstd = 1.0 / sqrt(var / n + 1e-5);
  for (int i = 0; i < n; i++) assert_true(fabs(y[i] - (((double)x0[i] + bias[i] - mean) * rstd * w[i] + b[i])) < 2e-6);
  esm2_kern_layernorm(x, NULL, x, w, b, n, 1e-5f);   // in place, no bias
  for (int i = 0; i < n; i++) assert_true(fabs(x[i] - y[i]) < 1e-6);
}

// esm2-tiny through the runner in f32 and bf16; mean embeddings of layers 0..2 per sequence.
static int run_tiny(esm2_prec_t prec, float *means, int *n_out) {
  char dir[PATH_MAX + 64], fasta[PATH_MAX + 100];
  if (!fx_find_shared("testvectors/esm2-tiny/sequences.fasta")) return -1;
  snprintf(dir, sizeof dir, "%s/testvectors/esm2-tiny", fx_shared_dir);
  snprintf(fasta, sizeof fasta, "%s/sequences.fasta", dir);
  esm2_model_t *m = NULL;
  ps_err_t err = {0};
  assert_int_equal(esm2_load(&m, dir, &err), 0);
  int lay[3] = {0, 1, 2}, D = esm2_config(m)->d_model, n = 0, rc;
  esm2_run_opts_t o = {0};
  o.fasta_path = fasta;
  o.req = (esm2_request_t){lay, 3, 0, 1, 0};
  o.threads = 2;
  o.precision = prec;
  esm2_runner_t *r = NULL;
  assert_int_equal(esm2_runner_new(&r, m, &o, &err), 0);
  esm2_item_t it;
  while ((rc = esm2_runner_next(r, &it, &err)) > 0) {
    for (int l = 0; l < 3; l++) memcpy(means + ((size_t)n * 3 + l) * D, it.mean[l], D * sizeof(float));
    n++;
  }
  assert_int_equal(rc, 0);
  esm2_runner_destroy(&r);
  esm2_destroy(&m);
  *n_out = n;
  return D;
}

static void test_tiny_forward(void **state) {
  (void)state;
  static float f32[64 * 3 * 1024], bf[64 * 3 * 1024];
  int n = 0, nb = 0, D = run_tiny(ESM2_PREC_F32, f32, &n);
  if (D < 0) skip();   // no ../shared test vectors
  assert_true(n == 6 && D <= 1024);
  if (esm2_bf16_supported()) {
    assert_int_equal(run_tiny(ESM2_PREC_BF16, bf, &nb), D);
    assert_int_equal(nb, n);
    double min_cos = 1, max_err = 0, max_diff_l1 = 0;
    for (int i = 0; i < n * 3; i++) {
      const float *x = f32 + (size_t)i * D, *y = bf + (size_t)i * D;
      double xy = 0, xx = 0, yy = 0;
      for (int j = 0; j < D; j++) {
        xy += (double)x[j] * y[j];
        xx += (double)x[j] * x[j];
        yy += (double)y[j] * y[j];
        max_err = fmax(max_err, fabs((double)x[j] - y[j]));
      }
      min_cos = fmin(min_cos, xy / sqrt(xx * yy));
      if (i % 3 >= 1) max_diff_l1 = fmax(max_diff_l1, fabs((double)x[0] - y[0]));
    }
    fprintf(stderr, "esm2-tiny bf16 vs f32: min cos %.7f, max abs err %.3g\n", min_cos, max_err);
    assert_true(min_cos >= 0.9999);
    assert_true(max_diff_l1 > 0);   // the bf16 path did run (layers after the embeddings differ)
  }
  // without the CPU feature a BF16 workspace runs float32: the same bits
  esm2_gemm_bf16_force_off(1);
  assert_false(esm2_bf16_supported());
  assert_int_equal(run_tiny(ESM2_PREC_BF16, bf, &nb), D);
  esm2_gemm_bf16_force_off(0);
  assert_memory_equal(f32, bf, sizeof(float) * (size_t)n * 3 * D);
  // attention through sgemm instead of the AVX-512F kernels: the same within float rounding
  esm2_attn_force_off(1);
  assert_int_equal(run_tiny(ESM2_PREC_F32, bf, &nb), D);
  esm2_attn_force_off(0);
  double worst = 0;
  for (size_t i = 0; i < (size_t)n * 3 * D; i++) worst = fmax(worst, fabs((double)f32[i] - bf[i]));
  assert_true(worst < 1e-5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round),
      cmocka_unit_test(test_pack_layout),
      cmocka_unit_test(test_kernel_vs_ref),
      cmocka_unit_test(test_attn_vs_ref),
      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_tiny_forward),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
