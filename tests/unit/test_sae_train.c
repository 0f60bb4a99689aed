// sae_train (gradients): every architecture's and regulariser's gradient against central finite
// differences of the loss — topk with and without AuxK, relu-L1 on the sparse and the dense path,
// batchtopk, transcoders, per-sample normalisation, the encoder-decoder tie, Matryoshka's nested loss; JumpReLU: finite
// differences for the parameters with a true gradient, the straight-through threshold gradient
// against a double-precision re-derivation of SAELens' formula, dense and sparse paths agreeing.
// The step, determinism and files: test_sae_train_step.c.
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

#include "sae.h"
#include "sae_fixture.h"
#include "sae_train.h"

static double loss_of(sae_trainer_t *t, const float *x, const float *y, int64_t B) {
  sae_losses_t L;
  ps_err_t err = {0};
  assert_int_equal(sae_trainer_grad(t, x, y, B, &L, &err), 0);
  return L.loss;
}

// Check every parameter (or a stride of them) whose selection stays fixed under +-h.
// only: NULL = all; else a mask over params.
static void gradcheck(sae_t *s, sae_trainer_t *t, const float *x, const float *y, int64_t B, const uint8_t *only,
                      int *n_checked) {
  sae_losses_t L;
  ps_err_t err = {0};
  assert_int_equal(sae_trainer_grad(t, x, y, B, &L, &err), 0);
  size_t np = s->n_params;
  float *g = malloc(np * sizeof(float));
  memcpy(g, sae_trainer_grad_buf(t), np * sizeof(float));
  uint64_t h0 = L.selection_hash;
  int bad = 0, checked = 0;
  for (size_t i = 0; i < np; i++) {
    if (only && !only[i]) continue;
    float p0 = s->params[i];
    const float h = 1e-2f;
    s->params[i] = p0 + h;
    double lp = loss_of(t, x, y, B);
    sae_losses_t L2;
    sae_trainer_grad(t, x, y, B, &L2, &err);
    uint64_t l0p = L2.selection_hash;
    s->params[i] = p0 - h;
    double lm = loss_of(t, x, y, B);
    sae_trainer_grad(t, x, y, B, &L2, &err);
    uint64_t l0m = L2.selection_hash;
    s->params[i] = p0;
    if (l0p != h0 || l0m != h0) continue;  // selection changed: not differentiable here
    double num = (lp - lm) / (2.0 * h);
    double tol = 2e-3 + 2e-2 * fabs(num);
    if (fabs(num - g[i]) > tol) {
      if (bad < 10) fprintf(stderr, "param %zu: analytic %.6g numeric %.6g\n", i, g[i], num);
      bad++;
    }
    checked++;
  }
  free(g);
  assert_int_equal(bad, 0);
  *n_checked = checked;
}

static const char *g_matryoshka;  // nested prefixes for run_gradcheck (NULL = plain loss)
static double g_tie_coeff;

static void run_gradcheck(sae_arch_t arch, int d, int n, int o, int k, int norm, double dense_thr, int aux_mode) {
  sae_t *s = make_sae(arch, d, n, o, k, norm);
  if (g_tie_coeff > 0)  // W_enc = W_dec^T at init: untie it, or the tie's gradient is 0
    for (int64_t q = 0; q < (int64_t)n * d; q++) s->W_encT[q] += 0.05f * (float)(q % 5 - 2);
  sae_train_opts_t opts;
  sae_train_opts_default(&opts, &s->cfg);
  if (g_matryoshka) {
    ps_err_t perr = {0};
    assert_int_equal(sae_train_parse_matryoshka(&opts, g_matryoshka, n, &perr), 0);
  }
  opts.dense_threshold = dense_thr;
  opts.tie_coeff = g_tie_coeff;
  opts.chunk_rows = 3;  // several chunks
  if (arch == SAE_RELU) opts.l1_coeff = 0.3;
  if (arch == SAE_JUMPRELU) {
    opts.l0_coeff = 0.3;
    opts.jumprelu_bandwidth = 0.1;
  }
  opts.k_aux = aux_mode ? 4 : 0;
  opts.dead_steps = 1;
  sae_trainer_t *t = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_trainer_new(&t, s, &opts, NULL, &err), 0);
  int64_t B = 7;
  float *x = rand_rows(11, B, d, 1.0f);
  float *y = d != o ? rand_rows(12, B, o, 1.0f) : NULL;
  uint8_t *mask = NULL;
  if (aux_mode) {
    // latents 0..n/2 dead; with the residual detached the finite difference equals the analytic
    // gradient only for parameters the residual does not depend on: those of dead latents that
    // no row selects. Check those with aux on, everything else with aux off.
    int64_t *sf = sae_trainer_steps_since_fired(t);
    for (int j = 0; j < n / 2; j++) sf[j] = 10;
    sae_losses_t L;
    assert_int_equal(sae_trainer_grad(t, x, y, B, &L, &err), 0);
    assert_true(L.aux > 0);
    assert_int_equal(L.n_dead, n / 2);
    // which latents are selected by the main path: probe with the encoder
    sae_enc_t *e = NULL;
    sae_codes_t codes = {0};
    assert_int_equal(sae_enc_new(&e, s, NULL, 16, &err), 0);
    assert_int_equal(sae_enc_run(e, x, B, &codes, &err), 0);
    uint8_t *sel = calloc((size_t)n, 1);
    for (int64_t q = 0; q < codes.indptr[B]; q++) sel[codes.indices[q]] = 1;
    mask = calloc(s->n_params, 1);
    int nm = 0;
    for (int j = 0; j < n / 2; j++)
      if (!sel[j]) {
        for (int i = 0; i < d; i++) mask[(size_t)(j * d + i)] = 1;
        for (int i = 0; i < o; i++) mask[(size_t)(n * d + n + j * o + i)] = 1;
        mask[(size_t)(n * d + j)] = 1;
        nm++;
      }
    assert_true(nm > 0);
    free(sel);
    sae_codes_free(&codes);
    sae_enc_free(&e);
  }
  int checked = 0;
  gradcheck(s, t, x, y, B, mask, &checked);
  assert_true(checked > (mask ? 10 : (int)s->n_params / 2));
  free(mask);
  free(x);
  free(y);
  sae_trainer_free(&t);
  sae_free(&s);
}

static void test_grad_topk(void **st) { (void)st; run_gradcheck(SAE_TOPK, 6, 12, 6, 3, 0, 0.05, 0); }
static void test_grad_topk_aux(void **st) { (void)st; run_gradcheck(SAE_TOPK, 6, 24, 6, 2, 0, 0.05, 1); }
// Matryoshka with AuxK active (topk; dead latents spread over the prefixes): finite differences of
// the nested loss + the AuxK term; and with per-sample normalisation, and batchtopk
static void test_grad_matryoshka_aux(void **st) {
  (void)st;
  g_matryoshka = "5,14";
  run_gradcheck(SAE_TOPK, 6, 24, 6, 2, 0, 0.05, 1);
  run_gradcheck(SAE_TOPK, 6, 24, 6, 3, 1, 0.05, 0);
  run_gradcheck(SAE_BATCHTOPK, 6, 24, 6, 2, 0, 0.05, 0);
  g_matryoshka = NULL;
}
// The encoder-decoder tie: finite differences on topk (with the unit-norm decoder), batchtopk and
// relu; its value is sum_j ||e_j - w_j||^2 times the coefficient.
static void test_grad_tie(void **st) {
  (void)st;
  g_tie_coeff = 0.4;
  run_gradcheck(SAE_TOPK, 6, 12, 6, 3, 0, 0.05, 0);
  run_gradcheck(SAE_BATCHTOPK, 6, 12, 6, 2, 0, 0.05, 0);
  run_gradcheck(SAE_RELU, 6, 12, 6, 0, 0, 2.0, 0);
  g_tie_coeff = 0;
  sae_t *s = make_sae(SAE_TOPK, 6, 12, 6, 3, 0);
  for (int q = 0; q < 12 * 6; q++) s->W_encT[q] += 0.01f * (float)(q % 7);  // untie
  sae_train_opts_t opts;
  sae_train_opts_default(&opts, &s->cfg);
  opts.tie_coeff = 0.4;
  sae_trainer_t *t = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_trainer_new(&t, s, &opts, NULL, &err), 0);
  float *x = rand_rows(11, 7, 6, 1.0f);
  sae_losses_t L;
  assert_int_equal(sae_trainer_grad(t, x, NULL, 7, &L, &err), 0);
  double want = 0;
  for (int q = 0; q < 12 * 6; q++) {
    double df = (double)s->W_encT[q] - s->W_dec[q];
    want += 0.4 * df * df;
  }
  assert_true(want > 0);
  assert_true(fabs(L.tie - want) < 1e-6 * want);
  free(x);
  sae_trainer_free(&t);
  sae_free(&s);
}
static void test_grad_topk_norm(void **st) { (void)st; run_gradcheck(SAE_TOPK, 6, 12, 6, 3, 1, 0.05, 0); }
static void test_grad_relu_sparse(void **st) { (void)st; run_gradcheck(SAE_RELU, 6, 12, 6, 0, 0, 2.0, 0); }
static void test_grad_relu_dense(void **st) { (void)st; run_gradcheck(SAE_RELU, 6, 12, 6, 0, 0, 0.0, 0); }
static void test_grad_batchtopk(void **st) { (void)st; run_gradcheck(SAE_BATCHTOPK, 6, 12, 6, 2, 0, 0.05, 0); }
static void test_grad_transcoder(void **st) { (void)st; run_gradcheck(SAE_TOPK, 6, 12, 5, 3, 0, 0.05, 0); }
static void test_grad_transcoder_relu(void **st) { (void)st; run_gradcheck(SAE_RELU, 5, 10, 7, 0, 1, 0.0, 0); }
static void test_grad_jumprelu_sparse(void **st) { (void)st; run_gradcheck(SAE_JUMPRELU, 6, 12, 6, 0, 0, 2.0, 0); }
static void test_grad_jumprelu_dense(void **st) { (void)st; run_gradcheck(SAE_JUMPRELU, 6, 12, 6, 0, 0, 0.0, 0); }
static void test_grad_jumprelu_transcoder(void **st) { (void)st; run_gradcheck(SAE_JUMPRELU, 5, 10, 7, 0, 1, 2.0, 0); }

// JumpReLU threshold pseudo-gradient (SAELens' Step / JumpReLU backward, rectangle kernel) against
// a double-precision re-derivation, on the sparse and the dense path; the two paths agree on
// every gradient.
static void test_jumprelu_ste(void **st) {
  (void)st;
  ps_err_t err = {0};
  const int d = 12, n = 48, B = 30;
  const double bw = 0.3, lam = 0.7;
  sae_t *s = make_sae(SAE_JUMPRELU, d, n, d, 0, 0);
  float *x = rand_rows(41, B, d, 1.0f);
  float *gp[2], *gt[2];
  for (int path = 0; path < 2; path++) {
    sae_train_opts_t o;
    sae_train_opts_default(&o, &s->cfg);
    o.l0_coeff = lam;
    o.jumprelu_bandwidth = bw;
    o.dense_threshold = path ? 0.0 : 2.0;
    o.chunk_rows = 7;
    sae_trainer_t *t = NULL;
    assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
    sae_losses_t L;
    assert_int_equal(sae_trainer_grad(t, x, NULL, B, &L, &err), 0);
    assert_int_equal(L.dense_path, path);
    // reference in double
    double *ref = calloc((size_t)n, sizeof(double)), l0 = 0;
    int in_win = 0, win_off = 0;
    for (int b = 0; b < B; b++) {
      double pre[48], yh[12], e[12];
      for (int j = 0; j < n; j++) {
        double v = s->b_enc[j];
        for (int i = 0; i < d; i++) v += ((double)x[b * d + i] - s->b_dec[i]) * s->W_encT[j * d + i];
        pre[j] = v;
      }
      for (int i = 0; i < d; i++) yh[i] = s->b_dec[i];
      for (int j = 0; j < n; j++)
        if (pre[j] > s->threshold[j]) {
          l0 += 1;
          for (int i = 0; i < d; i++) yh[i] += pre[j] * s->W_dec[j * d + i];
        }
      for (int i = 0; i < d; i++) e[i] = 2.0 / B * (yh[i] - x[b * d + i]);
      for (int j = 0; j < n; j++) {
        double th = s->threshold[j], u = (pre[j] - th) / bw;
        if (!(u > -0.5 && u < 0.5)) continue;
        double g = 0;
        for (int i = 0; i < d; i++) g += e[i] * s->W_dec[j * d + i];
        ref[j] += -(th / bw) * g - (1.0 / bw) * lam / B;
        in_win++;
        win_off += pre[j] <= th;
      }
    }
    assert_true(in_win > 20);
    assert_true(win_off > 5);  // inactive latents inside the window get a gradient too
    assert_float_equal(L.l1, lam * l0 / B, 1e-9);
    const float *g = sae_trainer_log_threshold_grad(t);
    double mx = 0;
    for (int j = 0; j < n; j++) mx = fmax(mx, fabs(ref[j] * s->threshold[j]));
    for (int j = 0; j < n; j++) {
      double want = ref[j] * s->threshold[j];
      if (fabs(g[j] - want) > 1e-5 * mx) fprintf(stderr, "latent %d: log_threshold grad %.8g, reference %.8g\n", j, g[j], want);
      assert_true(fabs(g[j] - want) <= 1e-5 * mx);
    }
    gp[path] = malloc(s->n_params * sizeof(float));
    memcpy(gp[path], sae_trainer_grad_buf(t), s->n_params * sizeof(float));
    gt[path] = malloc((size_t)n * sizeof(float));
    memcpy(gt[path], g, (size_t)n * sizeof(float));
    free(ref);
    sae_trainer_free(&t);
  }
  for (size_t i = 0; i < s->n_params; i++) assert_float_equal(gp[0][i], gp[1][i], 1e-5 + 1e-4 * fabsf(gp[0][i]));
  for (int j = 0; j < n; j++) assert_float_equal(gt[0][j], gt[1][j], 1e-5 + 1e-4 * fabsf(gt[0][j]));
  for (int p = 0; p < 2; p++) {
    free(gp[p]);
    free(gt[p]);
  }
  free(x);
  sae_free(&s);
}

// Matryoshka: the loss is the mean over the nested prefixes of their reconstruction errors
// (checked against a direct computation from the encoder's codes), its gradient passes finite
// differences (topk and batchtopk, several chunks), and one prefix = d_sae is the plain loss.
static void run_matryoshka(sae_arch_t arch) {
  ps_err_t err = {0};
  const int d = 6, n = 16, B = 7;
  sae_t *s = make_sae(arch, d, n, d, 3, 0);
  sae_train_opts_t o;
  sae_train_opts_default(&o, &s->cfg);
  o.k_aux = 0;
  o.chunk_rows = 3;
  assert_int_equal(sae_train_parse_matryoshka(&o, "8,3", n, &err), 0);
  assert_int_equal(o.n_matryoshka, 3);
  assert_int_equal(o.matryoshka[0], 3);
  assert_int_equal(o.matryoshka[2], 16);
  assert_true(sae_train_parse_matryoshka(&o, "3,x", n, &err) < 0);
  assert_int_equal(sae_train_parse_matryoshka(&o, "3,8", n, &err), 0);
  sae_trainer_t *t = NULL;
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  float *x = rand_rows(51, B, d, 1.0f);
  sae_losses_t L;
  assert_int_equal(sae_trainer_grad(t, x, NULL, B, &L, &err), 0);
  if (arch == SAE_TOPK) {  // direct: codes from the encoder, prefix reconstructions in double
    sae_enc_t *e = NULL;
    sae_codes_t codes = {0};
    assert_int_equal(sae_enc_new(&e, s, NULL, 16, &err), 0);
    assert_int_equal(sae_enc_run(e, x, B, &codes, &err), 0);
    double tot = 0, full = 0;
    const int pref[3] = {3, 8, 16};
    int some_cut = 0;
    for (int b = 0; b < B; b++)
      for (int pp = 0; pp < 3; pp++) {
        double se = 0;
        for (int i = 0; i < d; i++) {
          double v = s->b_dec[i];
          for (int64_t q = codes.indptr[b]; q < codes.indptr[b + 1]; q++)
            if (codes.indices[q] < pref[pp]) v += (double)codes.values[q] * s->W_dec[codes.indices[q] * d + i];
            else some_cut += pp < 2;
          se += (v - x[b * d + i]) * (v - x[b * d + i]);
        }
        tot += se;
        if (pp == 2) full += se;
      }
    assert_true(some_cut > 0);
    assert_float_equal(L.loss, tot / (3.0 * B), 1e-5 * L.loss);
    assert_float_equal(L.mse, full / B, 1e-5 * L.mse);
    sae_codes_free(&codes);
    sae_enc_free(&e);
  }
  int checked = 0;
  gradcheck(s, t, x, NULL, B, NULL, &checked);
  assert_true(checked > (int)s->n_params / 2);
  sae_trainer_free(&t);
  // one prefix (= d_sae): the plain loss
  assert_int_equal(sae_train_parse_matryoshka(&o, "16", n, &err), 0);
  assert_int_equal(o.n_matryoshka, 1);
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  assert_int_equal(sae_trainer_grad(t, x, NULL, B, &L, &err), 0);
  assert_float_equal(L.loss, L.mse, 1e-12);
  sae_trainer_free(&t);
  free(x);
  sae_free(&s);
}
// Decoder rows from data: each row is some data row minus b_dec, scaled to the norm; the first n
// latents take n distinct rows; the SAE's encoder column equals its decoder row, a transcoder's is
// the same data row's input (b_dec not subtracted); a row at b_dec keeps its random direction.
static int64_t match_row(const float *w, const float *y, int64_t n, int64_t o, const float *sub, float norm) {
  for (int64_t r = 0; r < n; r++) {
    double nn = 0, dot = 0, ww = 0;
    for (int64_t i = 0; i < o; i++) {
      double t = (double)y[r * o + i] - (sub ? sub[i] : 0.0f);
      nn += t * t;
      dot += t * w[i];
      ww += (double)w[i] * w[i];
    }
    if (nn > 1e-12 && fabs(sqrt(ww) - norm) < 1e-5 && dot / sqrt(nn * ww) > 1 - 1e-6) return r;
  }
  return -1;
}

static void run_init_from_data(int d, int o) {
  const int n_lat = 10, n = 4;
  sae_t *s = make_sae(SAE_BATCHTOPK, d, n_lat, o, 2, 0);
  float *x = rand_rows(5, n + 1, d, 1.0f), *y = d == o ? x : rand_rows(6, n + 1, o, 1.0f);
  memcpy(y + n * o, s->b_dec, (size_t)o * sizeof(float));  // row n sits at b_dec
  float *dec0 = malloc((size_t)(n_lat * o) * sizeof(float));
  memcpy(dec0, s->W_dec, (size_t)(n_lat * o) * sizeof(float));
  sae_init_rows_from_data(s, x, y, n, 3, 0.5f);
  int seen[4] = {0};
  for (int64_t j = 0; j < n_lat; j++) {
    int64_t r = match_row(s->W_dec + j * o, y, n, o, s->b_dec, 0.5f);
    assert_true(r >= 0);
    if (j < n) {
      assert_int_equal(seen[r], 0);  // the first n latents: a permutation of the rows
      seen[r] = 1;
    }
    if (d == o && !s->cfg.transcoder)
      assert_memory_equal(s->W_encT + j * d, s->W_dec + j * o, (size_t)d * sizeof(float));
    else
      assert_int_equal(match_row(s->W_encT + j * d, x, n, d, NULL, 0.5f), r);
  }
  // rows at b_dec only: the random init stays
  memcpy(s->W_dec, dec0, (size_t)(n_lat * o) * sizeof(float));
  sae_init_rows_from_data(s, x, y + n * o, 1, 3, 0.5f);
  assert_memory_equal(s->W_dec, dec0, (size_t)(n_lat * o) * sizeof(float));
  free(dec0);
  if (y != x) free(y);
  free(x);
  sae_free(&s);
}
static void test_init_from_data(void **st) { (void)st; run_init_from_data(6, 6); }
static void test_init_from_data_transcoder(void **st) { (void)st; run_init_from_data(5, 7); }

static void test_matryoshka_topk(void **st) { (void)st; run_matryoshka(SAE_TOPK); }
static void test_matryoshka_batchtopk(void **st) { (void)st; run_matryoshka(SAE_BATCHTOPK); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grad_topk),        cmocka_unit_test(test_grad_topk_aux),
      cmocka_unit_test(test_grad_tie),
      cmocka_unit_test(test_grad_topk_norm),   cmocka_unit_test(test_grad_relu_sparse),
      cmocka_unit_test(test_grad_relu_dense),  cmocka_unit_test(test_grad_batchtopk),
      cmocka_unit_test(test_grad_transcoder),  cmocka_unit_test(test_grad_transcoder_relu),
      cmocka_unit_test(test_grad_jumprelu_sparse), cmocka_unit_test(test_grad_jumprelu_dense),
      cmocka_unit_test(test_grad_jumprelu_transcoder), cmocka_unit_test(test_jumprelu_ste),
      cmocka_unit_test(test_matryoshka_topk),  cmocka_unit_test(test_matryoshka_batchtopk),
      cmocka_unit_test(test_grad_matryoshka_aux),
      cmocka_unit_test(test_init_from_data),   cmocka_unit_test(test_init_from_data_transcoder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
