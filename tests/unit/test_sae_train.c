// sae_train: gradients against central finite differences of the loss for every architecture
// (topk with and without AuxK, relu-L1 on the sparse and the dense path, batchtopk, a transcoder,
// per-sample normalisation), the sparse and dense relu paths agreeing, Adam against a scalar
// re-implementation, the unit-norm decoder constraint, bitwise determinism at a fixed thread
// count, SAELens directory save/load (with a folded dataset scale) and the inference encoder
// agreeing with the training forward pass. JumpReLU: finite differences for the parameters with a
// true gradient, the straight-through threshold gradient against a double-precision re-derivation
// of SAELens' formula, dense and sparse paths agreeing, Adam on log_threshold, save as SAELens
// "jumprelu" with threshold = exp(log_threshold). Matryoshka: finite differences of the nested loss.
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

#include "hash.h"
#include "sae.h"
#include "sae_train.h"

static float *rand_rows(uint64_t seed, int64_t n, int64_t d, float scale) {
  float *x = malloc((size_t)(n * d) * sizeof(float));
  uint64_t st = seed;
  for (int64_t i = 0; i < n * d; i++)
    x[i] = scale * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  return x;
}

static sae_t *make_sae(sae_arch_t arch, int d, int n, int o, int k, int norm) {
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = arch;
  c.d_in = d;
  c.d_sae = n;
  c.d_out = o;
  c.k = k;
  c.apply_b_dec_to_input = d == o;
  c.transcoder = d != o;
  c.normalize_per_sample = norm;
  sae_t *s = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_new(&s, &c, &err), 0);
  sae_init_weights(s, 7, 1.0f);
  // non-trivial biases
  uint64_t st = 99;
  for (int64_t j = 0; j < n; j++) s->b_enc[j] = 0.1f * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.3);
  for (int64_t i = 0; i < o; i++) s->b_dec[i] = 0.05f * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.5);
  if (arch == SAE_JUMPRELU)  // per-latent thresholds (the trainer takes their logs)
    for (int64_t j = 0; j < n; j++) s->threshold[j] = 0.02f + 0.2f * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0);
  return s;
}

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
static double g_ortho_coeff, g_ortho_margin;  // decoder orthogonality term for run_gradcheck
static int g_ortho_per_row;
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
  opts.ortho_coeff = g_ortho_coeff;
  opts.ortho_margin = g_ortho_margin;
  opts.ortho_per_row = g_ortho_per_row;
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
// The decoder orthogonality term (over the latents active in the batch), alone and with a margin
// that leaves some pairs out, on topk, batchtopk and relu; its value is reported in the loss.
static void test_grad_ortho(void **st) {
  (void)st;
  g_ortho_coeff = 0.7;
  g_ortho_margin = 0.0;
  run_gradcheck(SAE_TOPK, 6, 12, 6, 3, 0, 0.05, 0);
  run_gradcheck(SAE_BATCHTOPK, 6, 12, 6, 2, 0, 0.05, 0);
  g_ortho_margin = 0.3;
  run_gradcheck(SAE_BATCHTOPK, 6, 12, 6, 3, 0, 0.05, 0);
  run_gradcheck(SAE_RELU, 6, 12, 6, 0, 0, 2.0, 0);
  // the term is there: same batch, loss with it minus loss without it = L.ortho > 0
  sae_t *s = make_sae(SAE_TOPK, 6, 12, 6, 3, 0);
  sae_train_opts_t opts;
  sae_train_opts_default(&opts, &s->cfg);
  opts.ortho_coeff = 0.7;
  sae_trainer_t *t = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_trainer_new(&t, s, &opts, NULL, &err), 0);
  float *x = rand_rows(11, 7, 6, 1.0f);
  sae_losses_t a, b;
  assert_int_equal(sae_trainer_grad(t, x, NULL, 7, &a, &err), 0);
  sae_trainer_free(&t);
  opts.ortho_coeff = 0;
  assert_int_equal(sae_trainer_new(&t, s, &opts, NULL, &err), 0);
  assert_int_equal(sae_trainer_grad(t, x, NULL, 7, &b, &err), 0);
  assert_true(a.ortho > 0 && b.ortho == 0);
  assert_true(fabs(a.loss - b.loss - a.ortho) < 1e-9 * fabs(a.loss));
  sae_trainer_free(&t);
  free(x);
  sae_free(&s);
  g_ortho_coeff = g_ortho_margin = 0;
}
// The per-row scope (pairs active in the same row): finite differences on topk, batchtopk, relu
// (sparse and dense paths), and its value against a direct sum over the encoder's codes.
static void test_grad_ortho_row(void **st) {
  (void)st;
  g_ortho_coeff = 0.7;
  g_ortho_per_row = 1;
  g_ortho_margin = 0.0;
  run_gradcheck(SAE_TOPK, 6, 12, 6, 3, 0, 0.05, 0);
  run_gradcheck(SAE_BATCHTOPK, 6, 12, 6, 2, 0, 0.05, 0);
  g_ortho_margin = 0.2;
  run_gradcheck(SAE_TOPK, 6, 12, 6, 4, 0, 0.05, 0);
  run_gradcheck(SAE_RELU, 6, 12, 6, 0, 0, 2.0, 0);
  run_gradcheck(SAE_RELU, 6, 12, 6, 0, 0, 0.0, 0);
  for (int arch = 0; arch < 2; arch++) {
    sae_t *s = make_sae(arch ? SAE_RELU : SAE_TOPK, 6, 12, 6, 3, 0);
    sae_train_opts_t opts;
    sae_train_opts_default(&opts, &s->cfg);
    opts.ortho_coeff = 0.7;
    opts.ortho_margin = 0.2;
    opts.ortho_per_row = 1;
    opts.chunk_rows = 3;
    if (arch) opts.dense_threshold = 0.0;  // relu through the dense path
    sae_trainer_t *t = NULL;
    ps_err_t err = {0};
    assert_int_equal(sae_trainer_new(&t, s, &opts, NULL, &err), 0);
    const int64_t B = 7;
    float *x = rand_rows(11, B, 6, 1.0f);
    sae_losses_t L;
    assert_int_equal(sae_trainer_grad(t, x, NULL, B, &L, &err), 0);
    if (arch) assert_int_equal(L.dense_path, 1);
    sae_enc_t *e = NULL;
    sae_codes_t codes = {0};
    assert_int_equal(sae_enc_new(&e, s, NULL, 16, &err), 0);
    assert_int_equal(sae_enc_run(e, x, B, &codes, &err), 0);
    double want = 0, batch_scope = 0;
    uint8_t act[12] = {0};
    for (int64_t b = 0; b < B; b++)
      for (int64_t p = codes.indptr[b]; p < codes.indptr[b + 1]; p++) {
        act[codes.indices[p]] = 1;
        for (int64_t q = codes.indptr[b]; q < codes.indptr[b + 1]; q++) {
          if (p == q) continue;
          double g = 0;
          for (int i = 0; i < 6; i++) g += (double)s->W_dec[codes.indices[p] * 6 + i] * s->W_dec[codes.indices[q] * 6 + i];
          double h = fabs(g) - 0.2;
          if (h > 0) want += h * h;
        }
      }
    for (int i = 0; i < 12; i++)
      for (int j = 0; j < 12; j++) {
        if (i == j || !act[i] || !act[j]) continue;
        double g = 0;
        for (int q = 0; q < 6; q++) g += (double)s->W_dec[i * 6 + q] * s->W_dec[j * 6 + q];
        double h = fabs(g) - 0.2;
        if (h > 0) batch_scope += h * h;
      }
    want *= 0.7 / (double)B;
    assert_true(want > 0);
    assert_true(fabs(L.ortho - want) < 1e-5 * want);
    assert_true(fabs(0.7 * batch_scope - want) > 1e-3 * want);  // the scopes differ on this batch
    sae_codes_free(&codes);
    sae_enc_free(&e);
    free(x);
    sae_trainer_free(&t);
    sae_free(&s);
  }
  g_ortho_coeff = g_ortho_margin = 0;
  g_ortho_per_row = 0;
}
// row-rarer: with fire counts set, the term's gradient (with it minus without it, same batch)
// lands only on the rarer latent of each co-firing pair: 4c/B sum_b sum_{j in b, count_j >= count_i}
// h_ij w_j on row i. The more frequent latent of each pair keeps its row.
static void test_ortho_row_rarer(void **st) {
  (void)st;
  const int d = 6, n = 12, B = 7;
  const double c = 0.7, tau = 0.1;
  sae_t *s = make_sae(SAE_TOPK, d, n, d, 4, 0);
  sae_train_opts_t opts;
  sae_train_opts_default(&opts, &s->cfg);
  opts.ortho_coeff = c;
  opts.ortho_margin = tau;
  opts.ortho_per_row = 2;
  opts.k_aux = 0;
  sae_trainer_t *t = NULL, *t0 = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_trainer_new(&t, s, &opts, NULL, &err), 0);
  opts.ortho_coeff = 0;
  assert_int_equal(sae_trainer_new(&t0, s, &opts, NULL, &err), 0);
  int64_t *fs = sae_trainer_fire_steps(t);
  for (int j = 0; j < n; j++) fs[j] = (j * 7) % 5;  // ties included
  float *x = rand_rows(21, B, d, 1.0f);
  sae_losses_t a, b;
  assert_int_equal(sae_trainer_grad(t, x, NULL, B, &a, &err), 0);
  assert_int_equal(sae_trainer_grad(t0, x, NULL, B, &b, &err), 0);
  const float *ga = sae_trainer_grad_buf(t), *gb = sae_trainer_grad_buf(t0);
  sae_enc_t *e = NULL;
  sae_codes_t codes = {0};
  assert_int_equal(sae_enc_new(&e, s, NULL, 16, &err), 0);
  assert_int_equal(sae_enc_run(e, x, B, &codes, &err), 0);
  double want[12 * 6] = {0};
  int frozen_pairs = 0;
  for (int64_t r = 0; r < B; r++)
    for (int64_t p = codes.indptr[r]; p < codes.indptr[r + 1]; p++)
      for (int64_t q = codes.indptr[r]; q < codes.indptr[r + 1]; q++) {
        int i = codes.indices[p], j = codes.indices[q];
        if (i == j) continue;
        double g = 0;
        for (int k = 0; k < d; k++) g += (double)s->W_dec[i * d + k] * s->W_dec[j * d + k];
        double h = fabs(g) - tau;
        if (h <= 0) continue;
        if (fs[i] > fs[j]) {
          frozen_pairs++;
          continue;
        }
        for (int k = 0; k < d; k++) want[i * d + k] += 4 * c / B * copysign(h, g) * s->W_dec[j * d + k];
      }
  assert_true(frozen_pairs > 0);
  double worst = 0, scale = 0;
  for (int q = 0; q < n * d; q++) {
    double got = (double)ga[n * d + n + q] - gb[n * d + n + q];
    worst = fmax(worst, fabs(got - want[q]));
    scale = fmax(scale, fabs(want[q]));
  }
  assert_true(scale > 0);
  assert_true(worst < 1e-5 * scale);
  for (int q = 0; q < n * d + n; q++) assert_true(ga[q] == gb[q]);  // the encoder is untouched
  sae_codes_free(&codes);
  sae_enc_free(&e);
  free(x);
  sae_trainer_free(&t);
  sae_trainer_free(&t0);
  sae_free(&s);
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

// A JumpReLU step: Adam on log_threshold with the clipped gradient (the same scale as the other
// parameters), the model threshold = exp(log_threshold) after it; a fresh model starts at the
// initial threshold; saved as SAELens "jumprelu" with that threshold, it encodes as trained.
static void test_jumprelu_step_save(void **st) {
  (void)st;
  ps_err_t err = {0};
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = SAE_JUMPRELU;
  c.d_in = c.d_out = 10;
  c.d_sae = 40;
  sae_t *s = NULL;
  assert_int_equal(sae_new(&s, &c, &err), 0);
  sae_init_weights(s, 3, 1.0f);
  sae_train_opts_t o;
  sae_train_opts_default(&o, &s->cfg);
  assert_float_equal(o.l0_coeff, 1.0, 0);
  assert_float_equal(o.jumprelu_bandwidth, 0.001, 0);
  assert_int_equal(o.k_aux, 0);
  o.jumprelu_init_threshold = 0.05;
  o.jumprelu_bandwidth = 0.2;
  o.clip_norm = 0.5;
  o.lr = 1e-2;
  sae_trainer_t *t = NULL;
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  for (int j = 0; j < 40; j++) {
    assert_float_equal(s->threshold[j], 0.05, 1e-7);
    assert_float_equal(sae_trainer_log_threshold(t)[j], log(0.05), 1e-6);
  }
  float *x = rand_rows(17, 25, 10, 1.0f);
  float *lt0 = malloc(40 * sizeof(float)), *m0 = malloc(40 * sizeof(float)), *v0 = malloc(40 * sizeof(float));
  int moved = 0;
  for (int step = 1; step <= 3; step++) {
    memcpy(lt0, sae_trainer_log_threshold(t), 40 * sizeof(float));
    memcpy(m0, sae_trainer_log_threshold_adam_m(t), 40 * sizeof(float));
    memcpy(v0, sae_trainer_log_threshold_adam_v(t), 40 * sizeof(float));
    sae_losses_t L;
    assert_int_equal(sae_trainer_step(t, x, NULL, 25, &L, &err), 0);
    const float *g = sae_trainer_log_threshold_grad(t), *gp = sae_trainer_grad_buf(t);
    double gn = 0;
    for (size_t i = 0; i < s->n_params; i++) gn += (double)gp[i] * gp[i];
    for (int j = 0; j < 40; j++) gn += (double)g[j] * g[j];
    gn = sqrt(gn);
    assert_float_equal(L.grad_norm, gn, 1e-6 * gn);
    double sc = gn > 0.5 ? 0.5 / (gn + 1e-6) : 1.0;
    double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
    for (int j = 0; j < 40; j++) {
      double gi = g[j] * sc;
      double m = 0.9 * m0[j] + 0.1 * gi, v = 0.999 * v0[j] + 0.001 * gi * gi;
      double want = lt0[j] - (1e-2 / bc1) * m / (sqrt(v) / sqrt(bc2) + 1e-8);
      assert_float_equal(sae_trainer_log_threshold(t)[j], want, 1e-6 + 1e-5 * fabs(want));
      assert_float_equal(s->threshold[j], exp(sae_trainer_log_threshold(t)[j]), 1e-6 * s->threshold[j]);
      moved += g[j] != 0;
    }
  }
  assert_true(moved > 10);
  // save / load / encode = the training selection
  char dir[] = "/tmp/protsae-jrXXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(sae_save(s, dir, 1.0f, 1.0f, &err), 0);
  char p[256], buf[8192];
  snprintf(p, sizeof p, "%s/cfg.json", dir);
  FILE *f = fopen(p, "r");
  size_t nr = fread(buf, 1, sizeof buf - 1, f);
  buf[nr] = 0;
  fclose(f);
  assert_non_null(strstr(buf, "\"architecture\": \"jumprelu\""));
  sae_t *l = NULL;
  assert_int_equal(sae_load(&l, dir, &err), 0);
  assert_int_equal(l->cfg.arch, SAE_JUMPRELU);
  assert_memory_equal(l->threshold, s->threshold, 40 * sizeof(float));
  sae_enc_t *e = NULL;
  sae_codes_t codes = {0};
  assert_int_equal(sae_enc_new(&e, l, NULL, 8, &err), 0);
  assert_int_equal(sae_enc_run(e, x, 25, &codes, &err), 0);
  sae_losses_t L;
  assert_int_equal(sae_trainer_grad(t, x, NULL, 25, &L, &err), 0);
  assert_float_equal(L.l0, (double)codes.indptr[25] / 25.0, 1e-12);
  assert_true(codes.indptr[25] > 0);
  sae_codes_free(&codes);
  sae_enc_free(&e);
  sae_free(&l);
  snprintf(p, sizeof p, "rm -rf %s", dir);
  assert_int_equal(system(p), 0);
  sae_trainer_free(&t);
  free(lt0);
  free(m0);
  free(v0);
  free(x);
  sae_free(&s);
}

// The relu dense and sparse paths compute the same gradient.
static void test_relu_paths_agree(void **st) {
  (void)st;
  ps_err_t err = {0};
  sae_t *s = make_sae(SAE_RELU, 16, 64, 16, 0, 0);
  float *x = rand_rows(5, 40, 16, 1.0f);
  float *g[2];
  for (int path = 0; path < 2; path++) {
    sae_train_opts_t o;
    sae_train_opts_default(&o, &s->cfg);
    o.l1_coeff = 0.5;
    o.dense_threshold = path ? 0.0 : 2.0;
    sae_trainer_t *t = NULL;
    assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
    sae_losses_t L;
    assert_int_equal(sae_trainer_grad(t, x, NULL, 40, &L, &err), 0);
    assert_int_equal(L.dense_path, path);
    g[path] = malloc(s->n_params * sizeof(float));
    memcpy(g[path], sae_trainer_grad_buf(t), s->n_params * sizeof(float));
    sae_trainer_free(&t);
  }
  for (size_t i = 0; i < s->n_params; i++) assert_float_equal(g[0][i], g[1][i], 1e-5 + 1e-4 * fabsf(g[0][i]));
  free(g[0]);
  free(g[1]);
  free(x);
  sae_free(&s);
}

// One Adam step equals torch.optim.Adam's formula on the clipped gradient; unit-norm rows after.
static void test_adam_step(void **st) {
  (void)st;
  ps_err_t err = {0};
  sae_t *s = make_sae(SAE_TOPK, 8, 20, 8, 4, 0);
  sae_train_opts_t o;
  sae_train_opts_default(&o, &s->cfg);
  o.unit_norm_decoder = 0;
  o.k_aux = 0;
  o.clip_norm = 0.05;
  o.lr = 1e-2;
  sae_trainer_t *t = NULL;
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  float *x = rand_rows(3, 10, 8, 1.0f);
  float *p0 = malloc(s->n_params * sizeof(float));
  for (int step = 1; step <= 3; step++) {
    memcpy(p0, s->params, s->n_params * sizeof(float));
    float *m0 = malloc(s->n_params * sizeof(float)), *v0 = malloc(s->n_params * sizeof(float));
    memcpy(m0, sae_trainer_adam_m(t), s->n_params * sizeof(float));
    memcpy(v0, sae_trainer_adam_v(t), s->n_params * sizeof(float));
    sae_losses_t L;
    assert_int_equal(sae_trainer_step(t, x, NULL, 10, &L, &err), 0);
    const float *g = sae_trainer_grad_buf(t);
    double gn = 0;
    for (size_t i = 0; i < s->n_params; i++) gn += (double)g[i] * g[i];
    gn = sqrt(gn);
    assert_float_equal(gn, L.grad_norm, 1e-6 * gn + 1e-9);
    double sc = gn > 0.05 ? 0.05 / (gn + 1e-6) : 1.0;
    double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
    for (size_t i = 0; i < s->n_params; i++) {
      double gi = g[i] * sc;
      double m = 0.9 * m0[i] + 0.1 * gi, v = 0.999 * v0[i] + 0.001 * gi * gi;
      double p = p0[i] - (1e-2 / bc1) * m / (sqrt(v) / sqrt(bc2) + 1e-8);
      assert_float_equal(s->params[i], p, 1e-6 + 1e-5 * fabs(p));
    }
    free(m0);
    free(v0);
  }
  assert_int_equal(sae_trainer_step_count(t), 3);
  sae_trainer_free(&t);
  // unit-norm decoder
  o.unit_norm_decoder = 1;
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  sae_losses_t L;
  assert_int_equal(sae_trainer_step(t, x, NULL, 10, &L, &err), 0);
  for (int j = 0; j < 20; j++) {
    double nn = 0;
    for (int i = 0; i < 8; i++) nn += (double)s->W_dec[j * 8 + i] * s->W_dec[j * 8 + i];
    assert_float_equal(sqrt(nn), 1.0, 1e-5);
  }
  sae_trainer_free(&t);
  free(p0);
  free(x);
  sae_free(&s);
}

// Same data, same thread count: bitwise identical parameters; training lowers the loss.
static void test_deterministic_threads(void **st) {
  (void)st;
  ps_err_t err = {0};
  float *x = rand_rows(21, 300, 32, 1.0f);
  float *res[2];
  double first = 0, last = 0;
  for (int rep = 0; rep < 2; rep++) {
    sae_t *s = make_sae(SAE_TOPK, 32, 256, 32, 8, 0);
    ps_pool_t *pool = ps_pool_new(2);
    sae_train_opts_t o;
    sae_train_opts_default(&o, &s->cfg);
    o.lr = 1e-2;
    o.chunk_rows = 64;
    o.dead_steps = 5;
    sae_trainer_t *t = NULL;
    assert_int_equal(sae_trainer_new(&t, s, &o, pool, &err), 0);
    for (int stp = 0; stp < 30; stp++) {
      sae_losses_t L;
      assert_int_equal(sae_trainer_step(t, x + (stp % 3) * 100 * 32, NULL, 100, &L, &err), 0);
      if (stp == 0) first = L.mse;
      last = L.mse;
    }
    res[rep] = malloc(s->n_params * sizeof(float));
    memcpy(res[rep], s->params, s->n_params * sizeof(float));
    sae_trainer_free(&t);
    ps_pool_destroy(&pool);
    sae_free(&s);
  }
  assert_true(last < 0.7 * first);
  assert_memory_equal(res[0], res[1], (size_t)(256 * 32 * 2 + 256 + 32) * sizeof(float));
  free(res[0]);
  free(res[1]);
  free(x);
}

// Save -> load round trip; a folded dataset scale gives the same codes on raw inputs; encoder
// codes equal the training selection.
static void test_save_load_encode(void **st) {
  (void)st;
  ps_err_t err = {0};
  char dir[] = "/tmp/protsae-saeXXXXXX";
  assert_non_null(mkdtemp(dir));
  sae_t *s = make_sae(SAE_TOPK, 10, 40, 10, 5, 0);
  float scale = 2.5f;
  assert_int_equal(sae_save(s, dir, scale, scale, &err), 0);
  sae_t *l = NULL;
  assert_int_equal(sae_load(&l, dir, &err), 0);
  assert_int_equal(l->cfg.arch, SAE_TOPK);
  assert_int_equal(l->cfg.k, 5);
  assert_int_equal(l->cfg.d_sae, 40);
  float *x = rand_rows(8, 20, 10, 1.0f);
  float *xs = malloc(20 * 10 * sizeof(float));
  for (int i = 0; i < 200; i++) xs[i] = x[i] * scale;
  sae_codes_t a = {0}, b = {0};
  sae_enc_t *ea = NULL, *eb = NULL;
  assert_int_equal(sae_enc_new(&ea, s, NULL, 7, &err), 0);
  assert_int_equal(sae_enc_new(&eb, l, NULL, 7, &err), 0);
  assert_int_equal(sae_enc_run(ea, xs, 20, &a, &err), 0);  // model trained on scaled inputs
  assert_int_equal(sae_enc_run(eb, x, 20, &b, &err), 0);   // saved model applies to raw inputs
  assert_int_equal(a.indptr[20], b.indptr[20]);
  for (int r = 0; r < 20; r++) assert_true(a.indptr[r + 1] - a.indptr[r] <= 5);
  assert_true(a.indptr[20] > 20);
  for (int64_t q = 0; q < a.indptr[20]; q++) {
    assert_int_equal(a.indices[q], b.indices[q]);
    assert_float_equal(a.values[q], b.values[q], 1e-4 * fabsf(a.values[q]) + 1e-5);
  }
  // NaN input: error naming the row
  x[3 * 10 + 4] = NAN;
  assert_int_equal(sae_enc_run(eb, x, 20, &b, &err), PS_ENAN);
  assert_non_null(strstr(err.msg, "row 3"));
  // wrong shape in the weights file: error naming the tensor
  char p[256];
  snprintf(p, sizeof p, "%s/cfg.json", dir);
  FILE *f = fopen(p, "r");
  char buf[8192];
  size_t nr = fread(buf, 1, sizeof buf - 1, f);
  buf[nr] = 0;
  fclose(f);
  char *pos = strstr(buf, "\"d_sae\": 40");
  assert_non_null(pos);
  memcpy(pos, "\"d_sae\": 41", 11);
  f = fopen(p, "w");
  fwrite(buf, 1, nr, f);
  fclose(f);
  sae_t *bad = NULL;
  assert_true(sae_load(&bad, dir, &err) < 0);
  assert_non_null(strstr(err.msg, "W_enc"));
  assert_null(bad);
  sae_codes_free(&a);
  sae_codes_free(&b);
  sae_enc_free(&ea);
  sae_enc_free(&eb);
  free(x);
  free(xs);
  sae_free(&s);
  sae_free(&l);
  snprintf(p, sizeof p, "rm -rf %s", dir);
  assert_int_equal(system(p), 0);
}


// A directory as SAELens writes it (no protsae fields; "standard" = ReLU; JumpReLU threshold)
// loads and encodes.
static void test_load_saelens_dir(void **st) {
  (void)st;
  ps_err_t err = {0};
  char dir[] = "/tmp/protsae-slXXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *archs[2] = {"standard", "jumprelu"};
  for (int a = 0; a < 2; a++) {
    sae_t *s = make_sae(a ? SAE_JUMPRELU : SAE_RELU, 6, 16, 6, 0, 0);
    if (s->threshold)
      for (int j = 0; j < 16; j++) s->threshold[j] = 0.05f * (float)j;
    assert_int_equal(sae_save(s, dir, 1.0f, 1.0f, &err), 0);
    char p[256], cfgtxt[512];
    snprintf(p, sizeof p, "%s/cfg.json", dir);
    snprintf(cfgtxt, sizeof cfgtxt,
             "{\"architecture\": \"%s\", \"d_in\": 6, \"d_sae\": 16, \"dtype\": \"float32\", "
             "\"device\": \"cpu\", \"apply_b_dec_to_input\": true, \"normalize_activations\": \"none\", "
             "\"model_name\": \"esm2_t6_8M_UR50D\", \"hook_name\": \"blocks.5.hook_resid_post\", "
             "\"hook_layer\": 5}", archs[a]);
    FILE *f = fopen(p, "w");
    fputs(cfgtxt, f);
    fclose(f);
    sae_t *l = NULL;
    assert_int_equal(sae_load(&l, dir, &err), 0);
    assert_int_equal(l->cfg.arch, a ? SAE_JUMPRELU : SAE_RELU);
    assert_int_equal(l->cfg.d_out, 6);
    assert_int_equal(l->cfg.layer, 5);
    assert_true(l->cfg.apply_b_dec_to_input);
    assert_memory_equal(l->params, s->params, s->n_params * sizeof(float));
    float *x = rand_rows(31, 9, 6, 1.0f);
    sae_enc_t *e = NULL;
    sae_codes_t c = {0};
    assert_int_equal(sae_enc_new(&e, l, NULL, 4, &err), 0);
    assert_int_equal(sae_enc_run(e, x, 9, &c, &err), 0);
    // reference: relu((x - b_dec) W_enc + b_enc), thresholded for jumprelu
    int64_t q = 0;
    for (int r = 0; r < 9; r++)
      for (int j = 0; j < 16; j++) {
        float v = l->b_enc[j];
        for (int i = 0; i < 6; i++) v += (x[r * 6 + i] - l->b_dec[i]) * l->W_encT[j * 6 + i];
        int on = v > 0 && (!a || v > l->threshold[j]);
        if (on) {
          assert_true(q < c.indptr[r + 1]);
          assert_int_equal(c.indices[q], j);
          assert_float_equal(c.values[q], v, 1e-5);
          q++;
        }
      }
    assert_int_equal(q, c.indptr[9]);
    free(x);
    sae_codes_free(&c);
    sae_enc_free(&e);
    sae_free(&l);
    sae_free(&s);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
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
static void test_matryoshka_topk(void **st) { (void)st; run_matryoshka(SAE_TOPK); }
static void test_matryoshka_batchtopk(void **st) { (void)st; run_matryoshka(SAE_BATCHTOPK); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grad_topk),        cmocka_unit_test(test_grad_topk_aux),
      cmocka_unit_test(test_grad_ortho),
      cmocka_unit_test(test_grad_ortho_row),
      cmocka_unit_test(test_ortho_row_rarer),
      cmocka_unit_test(test_grad_tie),
      cmocka_unit_test(test_grad_topk_norm),   cmocka_unit_test(test_grad_relu_sparse),
      cmocka_unit_test(test_grad_relu_dense),  cmocka_unit_test(test_grad_batchtopk),
      cmocka_unit_test(test_grad_transcoder),  cmocka_unit_test(test_grad_transcoder_relu),
      cmocka_unit_test(test_relu_paths_agree), cmocka_unit_test(test_adam_step),
      cmocka_unit_test(test_deterministic_threads), cmocka_unit_test(test_save_load_encode),
      cmocka_unit_test(test_load_saelens_dir),
      cmocka_unit_test(test_grad_jumprelu_sparse), cmocka_unit_test(test_grad_jumprelu_dense),
      cmocka_unit_test(test_grad_jumprelu_transcoder), cmocka_unit_test(test_jumprelu_ste),
      cmocka_unit_test(test_jumprelu_step_save), cmocka_unit_test(test_matryoshka_topk),
      cmocka_unit_test(test_matryoshka_batchtopk), cmocka_unit_test(test_grad_matryoshka_aux),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
