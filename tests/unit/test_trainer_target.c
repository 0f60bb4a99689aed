// trainer target (transcoders): on a synthetic layer pair h1 = h0 + W h0, a transcoder trained
// with the delta target (trainer_opts_t.target_delta) predicts h1 - h0 = W h0 from h0, and one
// trained on the raw target predicts h1: each is measured against both targets in the same test
// (fraction of variance unexplained, from the saved SAELens directory, scales folded). The saved
// cfg.json says "protsae_target" and sae_load reads it back; a delta target of another dimension
// than the input is refused naming both sources; a run resumed with the other mode is refused.
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
#include "hash.h"
#include "sae.h"
#include "trainer.h"

enum { D = 8, N = 2048, BATCH = 256 };

// In-memory paired stream: N rows of x (D) and y (od), BATCH rows a batch, `epochs` passes.
typedef struct mem_src {
  const float *x, *y;
  int64_t od;
  uint32_t epochs, epoch;
  int64_t at, seq;
  uint32_t offs[BATCH + 1];
} mem_src_t;

static int mem_next(void *ctx, reader_batch_t *b, ps_err_t *err) {
  (void)err;
  mem_src_t *s = ctx;
  if (s->at >= N) {
    if (++s->epoch >= s->epochs) return 0;
    s->at = 0;
  }
  int64_t n = N - s->at < BATCH ? N - s->at : BATCH;
  memset(b, 0, sizeof *b);
  b->n_proteins = (uint32_t)n;
  b->n_rows = (uint32_t)n;
  b->dim = D;
  b->target_dim = (uint32_t)s->od;
  b->rows = (float *)s->x + s->at * D;
  b->target = (float *)s->y + s->at * s->od;
  b->epoch = s->epoch;
  b->seq = (uint64_t)s->seq++;
  s->at += n;
  b->next = (reader_pos_t){.epoch = s->epoch, .record = (uint64_t)s->at, .seq = (uint64_t)s->seq};
  return 1;
}

static float gauss(uint64_t *st) {
  double u = ((double)(ps_splitmix64(st) >> 11) + 0.5) / 9007199254740992.0;
  double v = ((double)(ps_splitmix64(st) >> 11) + 0.5) / 9007199254740992.0;
  return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

// h0 ~ N(0, I) plus an offset, h1 = h0 + W h0 with W small (the layer's change is a fraction of h0).
static void make_pair(float *x, float *y) {
  uint64_t st = 42;
  float W[D * D];
  for (int i = 0; i < D * D; i++) W[i] = 0.4f * gauss(&st) / sqrtf(D);
  for (int64_t r = 0; r < N; r++) {
    for (int k = 0; k < D; k++) x[r * D + k] = gauss(&st) + (k == 0 ? 3.0f : 0.0f);
    for (int i = 0; i < D; i++) {
      float acc = 0;
      for (int k = 0; k < D; k++) acc += W[i * D + k] * x[r * D + k];
      y[r * D + i] = x[r * D + i] + acc;
    }
  }
}

static void opts_for(trainer_opts_t *o, const char *out, int delta) {
  trainer_opts_default(o);
  o->cfg.arch = SAE_TOPK;
  o->cfg.d_sae = 64;
  o->cfg.k = 16;
  sae_train_opts_default(&o->train, &o->cfg);
  o->train.k_aux = -1;
  o->train.lr = 3e-3;
  o->batch_rows = 64;
  o->shuffle_rows = 512;
  o->eval_every = 0;
  o->ckpt_every = 0;
  o->log_every = 0;
  o->val_max_rows = 0;
  o->out_dir = out;
  o->target_delta = delta;
  o->input_name = "h0.npy";
  o->target_name = "h1.npy";
}

static int train(const char *out, int delta, const float *x, const float *y, int64_t od, uint32_t epochs,
                 ps_err_t *err) {
  trainer_opts_t o;
  opts_for(&o, out, delta);
  mem_src_t src = {.x = x, .y = y, .od = od, .epochs = epochs};
  trainer_hooks_t h = {.next = mem_next, .src_ctx = &src};
  trainer_report_t rep;
  return trainer_run(&o, &h, NULL, &rep, err);
}

// FVU of the saved model's prediction from x against t (N x D).
static double fvu(const sae_t *s, const float *x, const float *t) {
  sae_enc_t *e = NULL;
  sae_codes_t c = {0};
  ps_err_t err = {0};
  float *yh = malloc((size_t)N * D * sizeof(float));
  assert_int_equal(sae_enc_new(&e, s, NULL, 256, &err), 0);
  assert_int_equal(sae_enc_run(e, x, N, &c, &err), 0);
  sae_decode(s, &c, yh);
  double mean[D] = {0}, se = 0, sv = 0;
  for (int64_t r = 0; r < N; r++)
    for (int k = 0; k < D; k++) mean[k] += t[r * D + k] / (double)N;
  for (int64_t r = 0; r < N; r++)
    for (int k = 0; k < D; k++) {
      double a = yh[r * D + k] - t[r * D + k], b = t[r * D + k] - mean[k];
      se += a * a;
      sv += b * b;
    }
  free(yh);
  sae_codes_free(&c);
  sae_enc_free(&e);
  return se / sv;
}

static void test_delta_learns_the_change(void **st) {
  (void)st;
  float *x = malloc((size_t)N * D * sizeof(float)), *y = malloc((size_t)N * D * sizeof(float)),
        *delta = malloc((size_t)N * D * sizeof(float));
  make_pair(x, y);
  for (int64_t i = 0; i < (int64_t)N * D; i++) delta[i] = y[i] - x[i];
  char od[4096], orw[4096], p[4200];
  ps_err_t err = {0};
  fx_path(od, sizeof od, "delta");
  fx_path(orw, sizeof orw, "raw");
  assert_int_equal(train(od, 1, x, y, D, 12, &err), 0);
  assert_int_equal(train(orw, 0, x, y, D, 12, &err), 0);
  sae_t *sd = NULL, *sr = NULL;
  snprintf(p, sizeof p, "%s/latest", od);
  assert_int_equal(sae_load(&sd, p, &err), 0);
  snprintf(p, sizeof p, "%s/latest", orw);
  assert_int_equal(sae_load(&sr, p, &err), 0);
  assert_true(sd->cfg.transcoder && sd->cfg.target_delta);
  assert_true(sr->cfg.transcoder && !sr->cfg.target_delta);
  double dd = fvu(sd, x, delta), dr = fvu(sd, x, y), rd = fvu(sr, x, delta), rr = fvu(sr, x, y);
  printf("delta-trained: fvu vs delta %.4f, vs raw %.4f; raw-trained: fvu vs delta %.4f, vs raw %.4f\n", dd, dr, rd,
         rr);
  assert_true(dd < 0.1);        // it learnt the change W h0
  assert_true(rd > 10 * dd);    // the raw transcoder predicts h1, far from the change
  assert_true(rr < 0.1);        // ... which it learnt
  assert_true(dr > 10 * rr);
  snprintf(p, sizeof p, "%s/latest/cfg.json", od);
  size_t len;
  char *cfg = fx_read_file(p, &len);
  assert_non_null(strstr(cfg, "\"protsae_target\": \"delta\""));
  free(cfg);
  snprintf(p, sizeof p, "%s/latest/cfg.json", orw);
  cfg = fx_read_file(p, &len);
  assert_non_null(strstr(cfg, "\"protsae_target\": \"raw\""));
  free(cfg);
  // resuming the delta run with the raw target is refused
  trainer_opts_t o;
  opts_for(&o, od, 0);
  o.resume = 1;
  mem_src_t src = {.x = x, .y = y, .od = D, .epochs = 13};
  trainer_hooks_t h = {.next = mem_next, .src_ctx = &src};
  trainer_report_t rep;
  assert_int_not_equal(trainer_run(&o, &h, NULL, &rep, &err), 0);
  printf("resume with raw: %s\n", err.msg);
  assert_non_null(strstr(err.msg, "delta target"));
  sae_free(&sd);
  sae_free(&sr);
  free(x);
  free(y);
  free(delta);
}

static void test_delta_needs_equal_dims(void **st) {
  (void)st;
  float *x = malloc((size_t)N * D * sizeof(float)), *y2 = malloc((size_t)N * D * sizeof(float)),
        *y = malloc((size_t)N * 6 * sizeof(float));
  make_pair(x, y2);
  for (int64_t r = 0; r < N; r++) memcpy(y + r * 6, y2 + r * D, 6 * sizeof(float));
  free(y2);
  char out[4096];
  ps_err_t err = {0};
  fx_path(out, sizeof out, "mismatch");
  assert_int_equal(train(out, 1, x, y, 6, 1, &err), PS_EDIM);
  printf("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "h0.npy has 8"));
  assert_non_null(strstr(err.msg, "h1.npy has 6"));
  fx_path(out, sizeof out, "mismatch-raw");  // raw takes any target dimension
  assert_int_equal(train(out, 0, x, y, 6, 1, &err), 0);
  free(x);
  free(y);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_delta_learns_the_change),
                                     cmocka_unit_test(test_delta_needs_equal_dims)};
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
