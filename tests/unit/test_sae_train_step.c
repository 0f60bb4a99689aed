// sae_train (the step and the files): Adam against a scalar re-implementation (with the unit-norm
// decoder constraint), the sparse and dense relu paths agreeing, bitwise determinism at a fixed
// thread count, SAELens directory save/load (with a folded dataset scale) and the inference
// encoder agreeing with the training forward pass; JumpReLU: Adam on log_threshold, saved as
// SAELens "jumprelu" with threshold = exp(log_threshold); dead-latent resampling. Scratch
// directories: fixture.h.
// The gradients: test_sae_train.c.
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

#include "fixture.h"
#include "sae.h"
#include "sae_fixture.h"
#include "sae_train.h"

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
  char dir[PATH_MAX];
  assert_int_equal(mkdir(fx_path(dir, sizeof dir, "jr"), 0755), 0);
  assert_int_equal(sae_save(s, dir, 1.0f, 1.0f, &err), 0);
  char p[PATH_MAX], buf[8192];
  fx_path(p, sizeof p, "jr/cfg.json");
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
  char dir[PATH_MAX];
  assert_int_equal(mkdir(fx_path(dir, sizeof dir, "sae"), 0755), 0);
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
  char p[PATH_MAX];
  fx_path(p, sizeof p, "sae/cfg.json");
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
}


// A directory as SAELens before v6 wrote it (no protsae fields; "standard" = ReLU; JumpReLU
// threshold) loads and encodes; blocks.5.hook_resid_post is ESM layer 6 (the output of block 5).
static void test_load_saelens_dir(void **st) {
  (void)st;
  ps_err_t err = {0};
  char dir[PATH_MAX];
  assert_int_equal(mkdir(fx_path(dir, sizeof dir, "sl"), 0755), 0);
  const char *archs[2] = {"standard", "jumprelu"};
  for (int a = 0; a < 2; a++) {
    sae_t *s = make_sae(a ? SAE_JUMPRELU : SAE_RELU, 6, 16, 6, 0, 0);
    if (s->threshold)
      for (int j = 0; j < 16; j++) s->threshold[j] = 0.05f * (float)j;
    assert_int_equal(sae_save(s, dir, 1.0f, 1.0f, &err), 0);
    char p[PATH_MAX], cfgtxt[512];
    fx_path(p, sizeof p, "sl/cfg.json");
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
    assert_int_equal(l->cfg.layer, 6);
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
}

// Dead-latent resampling: a TopK SAE with the identity's first six rows as latents 0-5 and two dead
// latents 6 and 7; rows 0-3 are nearly reconstructed (residual 0.01 e_{r+1}), row 4 = 3 e_0 + e_4 +
// e_5 leaves the residual e_4 + e_5 (k = 1). The first dead latent takes the worst row's residual
// direction (unit decoder row, encoder column at 0.2 x the live encoder norm or tied), b_enc 0, its
// Adam moments zeroed and its dead count restarted; the second takes another row; the live latents and
// their moments stay as they were. ReLU is refused.
static void run_resample(double enc_scale) {
  ps_err_t err = {0};
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = SAE_TOPK;
  c.k = 1;
  c.d_in = c.d_out = 6;
  c.d_sae = 8;
  sae_t *s = NULL;
  assert_int_equal(sae_new(&s, &c, &err), 0);
  sae_init_weights(s, 5, 1.0f);
  for (int j = 0; j < 6; j++)
    for (int i = 0; i < 6; i++) s->W_dec[j * 6 + i] = s->W_encT[j * 6 + i] = i == j ? 1.0f : 0.0f;
  for (int j = 0; j < 8; j++) s->b_enc[j] = j < 6 ? 0.0f : -5.0f;
  sae_train_opts_t o;
  sae_train_opts_default(&o, &s->cfg);
  sae_trainer_t *t = NULL;
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  for (size_t q = 0; q < s->n_params; q++) sae_trainer_adam_m(t)[q] = sae_trainer_adam_v(t)[q] = 1.0f;
  sae_trainer_steps_since_fired(t)[6] = sae_trainer_steps_since_fired(t)[7] = o.dead_steps;
  sae_trainer_steps_since_fired(t)[2] = o.dead_steps - 1;  // nearly dead: kept
  float x[5 * 6] = {0};
  for (int r = 0; r < 4; r++) {
    x[r * 6 + r] = 2.0f;
    x[r * 6 + r + 1] = 0.01f;
  }
  x[4 * 6 + 0] = 3.0f;
  x[4 * 6 + 4] = x[4 * 6 + 5] = 1.0f;
  float before[6 * 6];
  memcpy(before, s->W_dec, sizeof before);
  int64_t done = -1;
  assert_int_equal(sae_trainer_resample(t, x, NULL, 5, 42, 0, enc_scale, &done, &err), 0);
  assert_int_equal(done, 2);
  const float h = 1.0f / sqrtf(2.0f), fe = enc_scale > 0 ? 0.2f * h : h;
  for (int i = 0; i < 6; i++) {
    assert_float_equal(s->W_dec[6 * 6 + i], i >= 4 ? h : 0.0f, 1e-5);
    assert_float_equal(s->W_encT[6 * 6 + i], i >= 4 ? fe : 0.0f, 1e-5);
  }
  double n7 = 0, top = 0;  // latent 7: another row's residual, a unit row along some e_{r+1}
  for (int i = 0; i < 6; i++) {
    n7 += (double)s->W_dec[7 * 6 + i] * s->W_dec[7 * 6 + i];
    top = fmax(top, fabs(s->W_dec[7 * 6 + i]));
  }
  assert_float_equal(n7, 1.0, 1e-5);
  assert_float_equal(top, 1.0, 1e-5);
  assert_float_equal(s->b_enc[6], 0.0, 0);
  assert_float_equal(s->b_enc[7], 0.0, 0);
  assert_memory_equal(before, s->W_dec, sizeof before);
  const float *m = sae_trainer_adam_m(t), *v = sae_trainer_adam_v(t);
  for (int j = 0; j < 8; j++) {
    float want = j >= 6 ? 0.0f : 1.0f;
    assert_float_equal(m[48 + j], want, 0);       // b_enc
    assert_float_equal(v[48 + j], want, 0);
    for (int i = 0; i < 6; i++) {
      assert_float_equal(m[j * 6 + i], want, 0);  // W_encT
      assert_float_equal(v[j * 6 + i], want, 0);
      assert_float_equal(m[56 + j * 6 + i], want, 0);  // W_dec
      assert_float_equal(v[56 + j * 6 + i], want, 0);
    }
  }
  assert_int_equal(sae_trainer_steps_since_fired(t)[6], 0);
  assert_int_equal(sae_trainer_steps_since_fired(t)[2], o.dead_steps - 1);
  assert_int_equal(sae_trainer_n_dead(t), 0);
  sae_trainer_free(&t);
  sae_free(&s);
  c.arch = SAE_RELU;
  assert_int_equal(sae_new(&s, &c, &err), 0);
  sae_train_opts_default(&o, &s->cfg);
  assert_int_equal(sae_trainer_new(&t, s, &o, NULL, &err), 0);
  assert_int_equal(sae_trainer_resample(t, x, NULL, 5, 42, 0, enc_scale, &done, &err), PS_ECONFIG);
  assert_non_null(strstr(err.msg, "topk or batchtopk"));
  sae_trainer_free(&t);
  sae_free(&s);
}

static void test_resample_dead(void **st) { (void)st; run_resample(0.2); }
static void test_resample_dead_tied(void **st) { (void)st; run_resample(0.0); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_relu_paths_agree), cmocka_unit_test(test_adam_step),
      cmocka_unit_test(test_deterministic_threads), cmocka_unit_test(test_save_load_encode),
      cmocka_unit_test(test_load_saelens_dir), cmocka_unit_test(test_jumprelu_step_save),
      cmocka_unit_test(test_resample_dead),    cmocka_unit_test(test_resample_dead_tied),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
